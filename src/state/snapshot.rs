//! One terraform state document: its `serial`, `lineage`, terraform version and
//! resources, the resource addresses it holds, and a copy with another serial.

use std::collections::BTreeSet;

use serde_json::Value;

/// A parsed state file.
#[derive(Debug, Clone)]
pub struct Snapshot {
    doc: Value,
    pub serial: u64,
    pub lineage: String,
    pub terraform_version: String,
}

impl Snapshot {
    /// Parses a state file (format version 4); the error says what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Snapshot, String> {
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON ({e})"))?;
        let serial = doc
            .get("serial")
            .and_then(Value::as_u64)
            .ok_or("it has no numeric `serial`")?;
        let lineage = doc
            .get("lineage")
            .and_then(Value::as_str)
            .ok_or("it has no `lineage`")?
            .to_string();
        let terraform_version = doc
            .get("terraform_version")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        Ok(Snapshot {
            doc,
            serial,
            lineage,
            terraform_version,
        })
    }

    fn resource_list(&self) -> &[Value] {
        self.doc
            .get("resources")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// How many resources (blocks, not instances) the state holds.
    pub fn resources(&self) -> usize {
        self.resource_list().len()
    }

    /// Every resource instance address, as `terraform state list` prints it.
    pub fn addresses(&self) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        for r in self.resource_list() {
            let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
            let mut base = String::new();
            if !text("module").is_empty() {
                base.push_str(text("module"));
                base.push('.');
            }
            if text("mode") == "data" {
                base.push_str("data.");
            }
            base.push_str(&format!("{}.{}", text("type"), text("name")));
            let instances = r
                .get("instances")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            if instances.is_empty() {
                out.insert(base.clone());
            }
            for i in instances {
                match i.get("index_key") {
                    Some(Value::Number(n)) => out.insert(format!("{base}[{n}]")),
                    Some(Value::String(s)) => {
                        out.insert(format!("{base}[{}]", Value::from(s.as_str())))
                    }
                    _ => out.insert(base.clone()),
                };
            }
        }
        out
    }

    /// True when both hold the same resources and outputs.
    pub fn same_content(&self, other: &Snapshot) -> bool {
        self.doc.get("resources") == other.doc.get("resources")
            && self.doc.get("outputs") == other.doc.get("outputs")
    }

    /// The document with `serial` set, ready for `terraform state push`.
    pub fn with_serial(&self, serial: u64) -> Vec<u8> {
        let mut doc = self.doc.clone();
        if let Some(m) = doc.as_object_mut() {
            m.insert("serial".to_string(), Value::from(serial));
        }
        let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = r#"{
  "version": 4, "terraform_version": "1.15.5", "serial": 7, "lineage": "abc",
  "outputs": {},
  "resources": [
    {"mode": "managed", "type": "terraform_data", "name": "a", "instances": [{"attributes": {}}]},
    {"mode": "managed", "type": "terraform_data", "name": "n", "instances": [{"index_key": 0}, {"index_key": 1}]},
    {"module": "module.m", "mode": "data", "type": "x_y", "name": "d", "instances": [{"index_key": "k"}]}
  ]
}"#;

    #[test]
    fn reads_serial_lineage_and_addresses() {
        let s = Snapshot::parse(STATE.as_bytes()).unwrap();
        assert_eq!((s.serial, s.lineage.as_str()), (7, "abc"));
        assert_eq!(s.terraform_version, "1.15.5");
        assert_eq!(s.resources(), 3);
        let a: Vec<_> = s.addresses().into_iter().collect();
        assert_eq!(
            a,
            [
                "module.m.data.x_y.d[\"k\"]",
                "terraform_data.a",
                "terraform_data.n[0]",
                "terraform_data.n[1]"
            ]
        );
        let bumped = Snapshot::parse(&s.with_serial(9)).unwrap();
        assert_eq!(bumped.serial, 9);
        assert!(bumped.same_content(&s));
        assert!(Snapshot::parse(b"{}").is_err());
        assert!(Snapshot::parse(b"not json").is_err());
    }
}
