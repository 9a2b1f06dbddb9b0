//! `breakglass trust-statement`: prints the IAM trust statement that lets the
//! break-glass principal assume a platform's deployment role (stdout), and how to add
//! it (stderr).

use crate::error::Error;
use crate::import::trust_statement as trust;
use crate::{outln, say};

#[derive(Debug, clap::Args)]
pub struct TrustArgs {
    /// The break-glass principal: your user or role ARN (`aws sts get-caller-identity`
    /// prints it; a session ARN is turned into its role's ARN), or an account id.
    #[arg(long, value_name = "ARN")]
    pub principal: String,
    /// The deployment role the statement is for (named in the instructions).
    #[arg(long, value_name = "ARN")]
    pub role: Option<String>,
}

pub fn run(args: TrustArgs) -> Result<i32, Error> {
    let principal = trust::principal_arn(&args.principal).map_err(|e| Error::Message(e.0))?;
    if let Some(role) = &args.role {
        trust::check_role(role).map_err(|e| Error::Message(e.0))?;
    }
    let text = serde_json::to_string_pretty(&trust::statement(&principal))
        .map_err(|e| Error::Message(format!("cannot print the statement: {e}")))?;
    outln!("{text}");
    if principal != args.principal.trim() {
        say!(
            "breakglass: trust policies name {} as {principal}{}",
            args.principal.trim(),
            if args.principal.contains(":assumed-role/") {
                " (a role with a path, such as an SSO role under /aws-reserved/, needs its full ARN from `aws iam get-role`)"
            } else {
                ""
            }
        );
    }
    say!(
        "breakglass: {}",
        trust::instructions(&principal, args.role.as_deref())
    );
    Ok(0)
}
