//! The few S3 XML documents the backups read (pure): ListObjectsV2 pages, error
//! codes, upload ids; and escaping for the one document they write.

use super::client::Object;

/// One page of ListObjectsV2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    pub objects: Vec<Object>,
    pub truncated: bool,
    pub next: Option<String>,
}

/// Parses a ListObjectsV2 answer (pure).
pub fn parse_list(xml: &str) -> Result<ListPage, String> {
    if !xml.contains("<ListBucketResult") {
        return Err("not a ListBucketResult".into());
    }
    let mut objects = vec![];
    for item in elements(xml, "Contents") {
        let key = tag(item, "Key").ok_or("an object without a Key")?;
        let size = tag(item, "Size")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("object {key:?} without a valid Size"))?;
        objects.push(Object {
            key,
            last_modified: tag(item, "LastModified").unwrap_or_default(),
            size,
        });
    }
    Ok(ListPage {
        objects,
        truncated: tag(xml, "IsTruncated").as_deref() == Some("true"),
        next: tag(xml, "NextContinuationToken"),
    })
}

/// The inner texts of every `<name>...</name>` element (not nested in each other).
fn elements<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = vec![];
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    out
}

/// The unescaped text of the first `<name>` element.
pub fn tag(xml: &str, name: &str) -> Option<String> {
    elements(xml, name).first().map(|t| unescape(t))
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#34;", "\"")
        .replace("&amp;", "&")
}

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_pages_parse() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><IsTruncated>true</IsTruncated>
<Contents><Key>p/backup-1&amp;2</Key><LastModified>2024-05-24T10:00:00.000Z</LastModified><ETag>&quot;x&quot;</ETag><Size>42</Size></Contents>
<Contents><Key>p/backup-3</Key><LastModified>2024-05-25T10:00:00.000Z</LastModified><Size>7</Size></Contents>
<NextContinuationToken>tok+/=</NextContinuationToken></ListBucketResult>"#;
        let page = parse_list(xml).unwrap();
        assert_eq!(page.objects.len(), 2);
        assert_eq!(page.objects[0].key, "p/backup-1&2");
        assert_eq!(page.objects[0].size, 42);
        assert_eq!(page.objects[1].last_modified, "2024-05-25T10:00:00.000Z");
        assert!(page.truncated);
        assert_eq!(page.next.as_deref(), Some("tok+/="));
        assert!(parse_list("<Error><Code>AccessDenied</Code></Error>").is_err());
        assert!(parse_list(
            "<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>"
        )
        .is_err());
        let empty =
            parse_list("<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>")
                .unwrap();
        assert_eq!(empty.objects, vec![]);
        assert!(!empty.truncated);
    }
}
