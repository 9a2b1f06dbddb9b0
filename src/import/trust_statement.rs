//! The trust statement a person needs to assume a platform's deployment role.
//!
//! A platform's role usually trusts only the platform: Spacelift's AWS account with an
//! external id, or HCP Terraform's OIDC provider. `breakglass trust-statement` prints the
//! statement to add to that role's trust policy for the break-glass principal (with the
//! session tags and source identity breakglass sends), and the doctor's `role.assume`
//! points here when a role refuses the operator.

use serde::Serialize;

/// A principal or role ARN that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TrustError(pub String);

/// The principal as a trust policy names it. An STS session ARN
/// (`arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`) becomes its role's ARN; a bare
/// 12-digit account id becomes the account's root.
pub fn principal_arn(principal: &str) -> Result<String, TrustError> {
    let p = principal.trim();
    if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(format!("arn:aws:iam::{p}:root"));
    }
    let parts: Vec<&str> = p.splitn(6, ':').collect();
    let bad = || {
        TrustError(format!(
            "`{principal}` is not an IAM principal ARN\n  fix: pass your user or role ARN, e.g. --principal arn:aws:iam::111111111111:user/alice (`aws sts get-caller-identity` prints it)"
        ))
    };
    let [arn, partition, service, region, account, resource] = parts.as_slice() else {
        return Err(bad());
    };
    let account_ok = account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit());
    if *arn != "arn" || !partition.starts_with("aws") || !region.is_empty() || !account_ok {
        return Err(bad());
    }
    match *service {
        "iam" if *resource == "root" => Ok(p.to_string()),
        "iam" if ["user/", "role/"].iter().any(|k| resource.starts_with(k)) => Ok(p.to_string()),
        "sts" => match resource.split('/').collect::<Vec<_>>().as_slice() {
            ["assumed-role", role, _session] => {
                Ok(format!("arn:{partition}:iam::{account}:role/{role}"))
            }
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

/// Checks a role ARN's shape.
pub fn check_role(role: &str) -> Result<(), TrustError> {
    let parts: Vec<&str> = role.splitn(6, ':').collect();
    let ok = parts.len() == 6
        && parts[0] == "arn"
        && parts[2] == "iam"
        && parts[4].len() == 12
        && parts[5].starts_with("role/");
    if ok {
        Ok(())
    } else {
        Err(TrustError(format!(
            "`{role}` is not an IAM role ARN\n  fix: pass the deployment role, e.g. --role arn:aws:iam::111111111111:role/deploy"
        )))
    }
}

/// A trust policy statement, its fields in IAM's usual order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub sid: &'static str,
    pub effect: &'static str,
    pub principal: Principal,
    pub action: [&'static str; 3],
}

#[derive(Debug, Serialize)]
pub struct Principal {
    #[serde(rename = "AWS")]
    pub aws: String,
}

/// The statement to add to the role's trust policy: the principal may assume it, tag
/// the session (breakglass always sends `breakglass=true`) and set a source identity.
pub fn statement(principal_arn: &str) -> Statement {
    Statement {
        sid: "BreakGlass",
        effect: "Allow",
        principal: Principal {
            aws: principal_arn.to_string(),
        },
        action: ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"],
    }
}

/// How to add the statement, for stderr: the commands, the identity policy the
/// principal needs too, and the alternative of a separate break-glass role.
pub fn instructions(principal_arn: &str, role: Option<&str>) -> String {
    let name = role
        .and_then(|r| r.rsplit('/').next())
        .unwrap_or("ROLE_NAME");
    let target = role.unwrap_or("the deployment role");
    format!(
        "add this statement to the trust policy of {target}, beside the platform's own statement:\n  \
         aws iam get-role --role-name {name} --query Role.AssumeRolePolicyDocument > trust.json\n  \
         (append the statement printed on stdout to \"Statement\" in trust.json)\n  \
         aws iam update-assume-role-policy --role-name {name} --policy-document file://trust.json\n\
         {principal_arn} also needs sts:AssumeRole, sts:TagSession and sts:SetSourceIdentity on {target} in its own identity policy.\n\
         alternative: leave the platform's role alone and create a separate break-glass role that trusts {principal_arn}, with the same permissions; map it in .breakglass.toml.\n\
         then check with `breakglass doctor`"
    )
}

/// The doctor's addition to an AccessDenied on AssumeRole.
pub fn access_denied_hint(caller: &str, role: &str) -> String {
    let principal = principal_arn(caller).unwrap_or_else(|_| caller.to_string());
    format!(
        "if {role} trusts only the platform (Spacelift's account, HCP Terraform's OIDC provider), print the statement to add with `breakglass trust-statement --principal {principal} --role {role}`, or create a separate break-glass role that trusts you and map it in .breakglass.toml"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_as_trust_policies_name_them() {
        assert_eq!(
            principal_arn("arn:aws:iam::123456789012:user/alice").unwrap(),
            "arn:aws:iam::123456789012:user/alice"
        );
        assert_eq!(
            principal_arn("arn:aws:sts::123456789012:assumed-role/Admin/alice@example.com")
                .unwrap(),
            "arn:aws:iam::123456789012:role/Admin"
        );
        assert_eq!(
            principal_arn("123456789012").unwrap(),
            "arn:aws:iam::123456789012:root"
        );
        assert!(principal_arn("alice").is_err());
        assert!(principal_arn("arn:aws:s3:::bucket").is_err());
        assert!(check_role("arn:aws:iam::123456789012:role/deploy").is_ok());
        assert!(check_role("arn:aws:iam::123456789012:user/deploy").is_err());
        let text =
            serde_json::to_string(&statement("arn:aws:iam::123456789012:user/alice")).unwrap();
        assert_eq!(
            text,
            r#"{"Sid":"BreakGlass","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:user/alice"},"Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"]}"#
        );
    }
}
