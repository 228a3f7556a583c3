//! Files: push and pull (multipart), list, make-dir, remove.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{encode, target, Client};
use crate::error::{Error, Result};
use crate::http::{Request, Response};
use crate::multipart::{self, Part};
use crate::types::{permissions_text, FileInfo, FileMeta, MakeDirOptions, PushOptions};

/// Per-path result of a file operation.
#[derive(Debug, Deserialize)]
struct FileResult {
    path: String,
    #[serde(default)]
    error: Option<FileError>,
}

#[derive(Debug, Deserialize)]
struct FileError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    kind: Option<String>,
}

impl Client {
    /// Writes `content` to the absolute `path` (atomically, via Pebble).
    pub fn push(&self, path: &str, content: &[u8], opts: &PushOptions) -> Result<()> {
        let meta = FileMeta {
            path,
            make_dirs: opts.make_dirs,
            permissions: opts.permissions.map(permissions_text),
            user_id: opts.user_id,
            user: opts.user.as_deref(),
            group_id: opts.group_id,
            group: opts.group.as_deref(),
            ..FileMeta::default()
        };
        let request = json!({"action": "write", "files": [meta]});
        let mut boundary = multipart::new_boundary();
        while multipart::contains(content, boundary.as_bytes()) {
            boundary = multipart::new_boundary();
        }
        let body = multipart::build(
            &boundary,
            &[
                Part::form_data(
                    "request",
                    None,
                    "application/json",
                    request.to_string().into_bytes(),
                ),
                Part::form_data(
                    "files",
                    Some(path),
                    "application/octet-stream",
                    content.to_vec(),
                ),
            ],
        );
        let req = Request::new("POST", "/v1/files")
            .header("Accept", "application/json")
            .header(
                "Content-Type",
                format!("multipart/form-data; boundary=\"{boundary}\""),
            )
            .body(body);
        let what = req.describe();
        let resp = self.send(req, self.timeout)?;
        let env = self.envelope(&resp, &what)?;
        let results: Vec<FileResult> = self.decode(env.result, &what)?;
        self.check_file_results(results, path)
    }

    /// Reads the file at the absolute `path`.
    pub fn pull(&self, path: &str) -> Result<Vec<u8>> {
        let req = Request::new(
            "GET",
            target(
                "/v1/files",
                &[("action", "read".into()), ("path", encode(path))],
            ),
        )
        .header("Accept", "multipart/form-data");
        let what = req.describe();
        let resp = self.send(req, self.timeout)?;
        let boundary = match resp
            .header("Content-Type")
            .and_then(multipart::boundary_from_content_type)
        {
            Some(b) => b,
            None => {
                // Request-level errors come back as a plain JSON envelope.
                self.envelope(&resp, &what)?;
                return Err(self.protocol(format!("{what}: reply is not multipart")));
            }
        };
        let parts = multipart::parse(&boundary, &resp.body)
            .map_err(|e| self.protocol(format!("{what}: {e}")))?;
        let response = parts
            .iter()
            .find(|p| p.name().as_deref() == Some("response"))
            .ok_or_else(|| self.protocol(format!("{what}: no \"response\" part")))?;
        let env = self.envelope(
            &Response {
                status: resp.status,
                headers: Vec::new(),
                body: response.body.clone(),
            },
            &what,
        )?;
        let results: Vec<FileResult> = self.decode(env.result, &what)?;
        self.check_file_results(results, path)?;
        parts
            .into_iter()
            .find(|p| p.name().as_deref() == Some("files") && p.filename().as_deref() == Some(path))
            .map(|p| p.body)
            .ok_or_else(|| self.protocol(format!("{what}: no file content for {path:?}")))
    }

    /// Lists a directory (or, with `itself` or a file path, the path
    /// itself). A missing path is an [`Error::Path`] with kind `not-found`.
    pub fn list_files(
        &self,
        path: &str,
        pattern: Option<&str>,
        itself: bool,
    ) -> Result<Vec<FileInfo>> {
        let query = [
            ("action", "list".to_string()),
            ("path", encode(path)),
            ("pattern", pattern.map(encode).unwrap_or_default()),
            ("itself", if itself { "true".into() } else { String::new() }),
        ];
        let files: Result<Option<Vec<FileInfo>>> = self.get(target("/v1/files", &query));
        match files {
            Ok(files) => Ok(files.unwrap_or_default()),
            Err(Error::Api {
                kind: Some(kind),
                message,
                ..
            }) if matches!(
                kind.as_str(),
                "not-found" | "permission-denied" | "generic-file-error"
            ) =>
            {
                Err(Error::Path {
                    socket: self.socket.clone(),
                    path: path.to_string(),
                    kind,
                    message,
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Creates a directory.
    pub fn make_dir(&self, path: &str, opts: &MakeDirOptions) -> Result<()> {
        let meta = FileMeta {
            path,
            make_parents: opts.make_parents,
            permissions: opts.permissions.map(permissions_text),
            user_id: opts.user_id,
            user: opts.user.as_deref(),
            group_id: opts.group_id,
            group: opts.group.as_deref(),
            ..FileMeta::default()
        };
        let results: Vec<FileResult> =
            self.post("/v1/files", &json!({"action": "make-dirs", "dirs": [meta]}))?;
        self.check_file_results(results, path)
    }

    /// Removes a file or empty directory, or with `recursive` a whole tree
    /// (no error if it does not exist).
    pub fn remove_path(&self, path: &str, recursive: bool) -> Result<()> {
        let mut item = json!({"path": path});
        if recursive {
            item["recursive"] = Value::Bool(true);
        }
        let results: Vec<FileResult> =
            self.post("/v1/files", &json!({"action": "remove", "paths": [item]}))?;
        self.check_file_results(results, path)
    }

    fn check_file_results(&self, results: Vec<FileResult>, path: &str) -> Result<()> {
        let item = results
            .into_iter()
            .find(|r| r.path == path)
            .ok_or_else(|| self.protocol(format!("no result for path {path:?}")))?;
        match item.error {
            None => Ok(()),
            Some(err) => Err(Error::Path {
                socket: self.socket.clone(),
                path: item.path,
                kind: err
                    .kind
                    .filter(|k| !k.is_empty())
                    .unwrap_or_else(|| "generic-file-error".into()),
                message: err.message,
            }),
        }
    }
}
