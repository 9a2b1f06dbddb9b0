//! Spacelift's own record, saved on a good day with `spacectl api` and the GraphQL
//! query [`QUERY`] (`breakglass import spacelift --print-query | spacectl api >
//! spacelift.json`). The answer's field names are the Spacelift GraphQL API's: `stacks`
//! (`id`, `name`, `repository`, `branch`, `projectRoot`, `managesStateFile`,
//! `vendorConfig.workspace`, `attachedAwsIntegrations` with `integrationId`, `read`,
//! `write`, and the legacy `integrations.aws.assumedRoleArn`) and `awsIntegrations`
//! (`id`, `roleArn`, `durationSeconds`). It is read with the same rules as the code.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::spacelift::{finish, Attached, Draft};
use super::{ImportError, Inventory, Place, Skipped, Stack};

/// The query to save the export with (`spacectl api` reads it from stdin).
pub const QUERY: &str = "query BreakglassImport {
  stacks {
    id
    name
    repository
    branch
    projectRoot
    managesStateFile
    vendorConfig {
      __typename
      ... on StackConfigVendorTerraform { workspace }
      ... on StackConfigVendorOpenTofu { workspace }
    }
    attachedAwsIntegrations { integrationId read write }
    integrations { aws { assumedRoleArn durationSeconds } }
  }
  awsIntegrations { id name roleArn durationSeconds }
}
";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Export {
    stacks: Vec<ExportStack>,
    #[serde(default)]
    aws_integrations: Vec<ExportIntegration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportStack {
    id: String,
    name: String,
    repository: Option<String>,
    branch: Option<String>,
    project_root: Option<String>,
    manages_state_file: Option<bool>,
    vendor_config: Option<VendorConfig>,
    #[serde(default)]
    attached_aws_integrations: Vec<ExportAttachment>,
    integrations: Option<Integrations>,
}

#[derive(Deserialize)]
struct VendorConfig {
    workspace: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportAttachment {
    integration_id: String,
    read: bool,
    write: bool,
}

#[derive(Deserialize)]
struct Integrations {
    aws: Option<LegacyAws>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LegacyAws {
    assumed_role_arn: Option<String>,
    duration_seconds: Option<u64>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportIntegration {
    id: String,
    role_arn: String,
    duration_seconds: Option<u64>,
}

/// Reads a saved export: `{"data": {...}}` as `spacectl api` prints it, or the bare
/// `data` object.
pub fn read(path: &Path) -> Result<Inventory, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(&text, path)
}

fn parse(text: &str, path: &Path) -> Result<Inventory, ImportError> {
    let bad = |message: String| ImportError::Export {
        path: path.to_path_buf(),
        message,
    };
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
    if let Some(errors) = value.get("errors").filter(|e| !e.is_null()) {
        return Err(bad(format!("the saved answer holds errors: {errors}")));
    }
    let data = value.get("data").cloned().unwrap_or(value);
    let export: Export = serde_json::from_value(data).map_err(|e| bad(e.to_string()))?;
    let integrations: BTreeMap<&str, &ExportIntegration> = export
        .aws_integrations
        .iter()
        .map(|i| (i.id.as_str(), i))
        .collect();
    let place = Place {
        file: path.to_path_buf(),
        line: None,
    };
    let mut drafts = Vec::new();
    for s in &export.stacks {
        let address = format!("stack {}", s.id);
        let stack = Stack {
            address: address.clone(),
            name: s.name.clone(),
            id: Some(s.id.clone()),
            place: Some(place.clone()),
            project_root: s.project_root.clone().unwrap_or_default(),
            repository: s.repository.clone(),
            branch: s.branch.clone(),
            workspace: s
                .vendor_config
                .as_ref()
                .and_then(|v| v.workspace.clone())
                .filter(|w| !w.is_empty()),
            shared_workspace: "default".to_string(),
            manage_state: Some(s.manages_state_file.unwrap_or(true)),
            arn: None,
            read_arn: None,
            duration: None,
        };
        let mut draft = Draft::new(stack, vec![s.id.clone()]);
        for a in &s.attached_aws_integrations {
            match integrations.get(a.integration_id.as_str()) {
                Some(i) => draft.attached.push(Attached {
                    role_arn: i.role_arn.clone(),
                    read: a.read,
                    write: a.write,
                    duration_seconds: i.duration_seconds,
                }),
                None => draft.blockers.push(Skipped {
                    place: Some(place.clone()),
                    what: format!("{address}: attachedAwsIntegrations"),
                    reason: format!(
                        "integration {} is not in awsIntegrations (save the export with the query from --print-query)",
                        a.integration_id
                    ),
                }),
            }
        }
        let legacy = s.integrations.as_ref().and_then(|i| i.aws.as_ref());
        if let Some(LegacyAws {
            assumed_role_arn: Some(arn),
            duration_seconds,
        }) = legacy
        {
            draft.attached.push(Attached {
                role_arn: arn.clone(),
                read: true,
                write: true,
                duration_seconds: *duration_seconds,
            });
        }
        drafts.push(draft);
    }
    Ok(finish(drafts, Vec::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stacks_integrations_and_legacy_roles() {
        let text = r#"{"data": {
          "stacks": [
            {"id": "net", "name": "net", "repository": "infra", "branch": "main", "projectRoot": "network",
             "managesStateFile": false, "vendorConfig": {"__typename": "StackConfigVendorTerraform", "workspace": null},
             "attachedAwsIntegrations": [{"integrationId": "W", "read": false, "write": true},
                                         {"integrationId": "R", "read": true, "write": false}],
             "integrations": {"aws": {"assumedRoleArn": null, "durationSeconds": null}}},
            {"id": "old", "name": "old", "repository": "infra", "branch": "main", "projectRoot": null,
             "managesStateFile": true, "vendorConfig": {"__typename": "StackConfigVendorPulumi"},
             "attachedAwsIntegrations": [],
             "integrations": {"aws": {"assumedRoleArn": "arn:aws:iam::111111111111:role/old", "durationSeconds": 3600}}},
            {"id": "lost", "name": "lost", "attachedAwsIntegrations": [{"integrationId": "X", "read": true, "write": true}]}
          ],
          "awsIntegrations": [
            {"id": "W", "name": "w", "roleArn": "arn:aws:iam::111111111111:role/w", "durationSeconds": 7200},
            {"id": "R", "name": "r", "roleArn": "arn:aws:iam::111111111111:role/r", "durationSeconds": 900}
          ]}}"#;
        let inv = parse(text, Path::new("s.json")).unwrap();
        assert_eq!(inv.stacks.len(), 2, "{inv:?}");
        let net = &inv.stacks[0];
        assert_eq!(net.arn.as_deref(), Some("arn:aws:iam::111111111111:role/w"));
        assert_eq!(
            net.read_arn.as_deref(),
            Some("arn:aws:iam::111111111111:role/r")
        );
        assert_eq!(net.duration, Some(std::time::Duration::from_secs(7200)));
        assert_eq!(net.manage_state, Some(false));
        let old = &inv.stacks[1];
        assert_eq!(
            old.arn.as_deref(),
            Some("arn:aws:iam::111111111111:role/old")
        );
        assert_eq!(old.read_arn, None);
        assert!(
            inv.skipped
                .iter()
                .any(|s| s.reason.contains("integration X")),
            "{:?}",
            inv.skipped
        );
        assert!(parse(
            r#"{"errors": [{"message": "unauthorized"}]}"#,
            Path::new("e.json")
        )
        .unwrap_err()
        .to_string()
        .contains("unauthorized"));
    }
}
