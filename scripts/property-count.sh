#!/usr/bin/env bash
# Adds up the property tests' own lines in a test run's output (file arguments or
# stdin) and prints `properties: N passed, M failed (cases)`: N cases that passed, M
# properties that found a failing case. Exits 1 if any failed, or if none ran.
#   property cases: NAME N in T s             (tests/support/property.rs, all passed)
#   property failed: NAME after N cases: ...  (N passed, then one failed)
set -euo pipefail
awk '
  /^property cases: [^ ]+ [0-9]+( |$)/ { passed += $4; runs++ }
  /^property failed: [^ ]+ after [0-9]+ / { passed += $5; failed++; runs++ }
  END {
    printf "properties: %d passed, %d failed (cases)\n", passed, failed
    if (failed > 0 || runs == 0) exit 1
  }
' "$@"
