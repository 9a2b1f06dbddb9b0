//! The team audit trail (`[audit]`) against moto with IAM enforcement on: events as
//! objects under the S3 prefix of the versioned state bucket, written as the deploy
//! role with `If-None-Match: *`; alerts through SNS, read back from an SQS queue
//! subscribed to the topic; the local queue when the role may not write the trail;
//! the team view pairing starts with ends; and the doctor's `audit.sink`.
//!
//! The role's permissions are changed between runs with the admin's keys (the Python
//! helper below), so "denied" is moto's own IAM answer, never a mock.

mod kit;
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use kit::*;
use serde_json::Value;
use support::*;

const PREFIX: &str = "breakglass/audit/";
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:breakglass";
/// The bound a run may be held up by the trail (the default).
const BOUND: Duration = Duration::from_secs(2);

/// Admin operations for these tests, run with the admin's keys.
const ADMIN_PY: &str = r#"
import json, sys
import boto3
from botocore.config import Config

endpoint, key, secret, op, *args = sys.argv[1:]
def client(service):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=key, aws_secret_access_key=secret,
                        config=Config(s3={"addressing_style": "path"}))
def policy(statements):
    return json.dumps({"Version": "2012-10-17", "Statement": statements})
s3, iam, sns, sqs = client("s3"), client("iam"), client("sns"), client("sqs")
out = {}
if op == "setup-sink":
    s3.put_bucket_versioning(Bucket="tfstate", VersioningConfiguration={"Status": "Enabled"})
    topic = sns.create_topic(Name="breakglass")["TopicArn"]
    queue = sqs.create_queue(QueueName="alerts")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    out = {"topic": topic, "queue": queue}
elif op == "role-policy":
    # role-policy ROLE S3_RESOURCES SNS_ACTIONS ('-' for none)
    role, resources, actions = args
    statements = [{"Effect": "Allow", "Action": ["sts:GetCallerIdentity"], "Resource": "*"},
                  {"Effect": "Allow", "Action": ["s3:*"], "Resource": resources.split(",")}]
    if actions != "-":
        statements.append({"Effect": "Allow", "Action": actions.split(","), "Resource": "*"})
    iam.put_role_policy(RoleName=role, PolicyName="p", PolicyDocument=policy(statements))
elif op == "trust":
    # trust ROLE USER...: the users may assume the role
    role, *users = args
    arns = ["arn:aws:iam::123456789012:user/" + u for u in users]
    iam.update_assume_role_policy(RoleName=role, PolicyDocument=policy([
        {"Effect": "Allow", "Principal": {"AWS": arns},
         "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]}]))
    for u in users:
        iam.put_user_policy(UserName=u, PolicyName="p", PolicyDocument=policy([
            {"Effect": "Allow", "Action": ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity",
                                           "sts:GetCallerIdentity"], "Resource": "*"}]))
elif op == "objects":
    # objects PREFIX: every key with its number of versions and its latest body
    versions = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket="tfstate", Prefix=args[0]):
        for v in page.get("Versions", []):
            versions[v["Key"]] = versions.get(v["Key"], 0) + 1
    out = {"objects": [{"key": k, "versions": n,
                        "body": json.loads(s3.get_object(Bucket="tfstate", Key=k)["Body"].read())}
                       for k, n in sorted(versions.items())]}
elif op == "messages":
    # messages QUEUE_URL: every alert waiting in the queue (then deleted)
    got = []
    while True:
        r = sqs.receive_message(QueueUrl=args[0], MaxNumberOfMessages=10, WaitTimeSeconds=1)
        ms = r.get("Messages", [])
        if not ms:
            break
        for m in ms:
            body = json.loads(m["Body"])
            got.append({"subject": body.get("Subject"), "message": body.get("Message")})
            sqs.delete_message(QueueUrl=args[0], ReceiptHandle=m["ReceiptHandle"])
    out = {"messages": got}
else:
    raise SystemExit("unknown op " + op)
print(json.dumps(out))
"#;

/// The test's world: the kit (moto, alice, the sandbox), the topic's queue, and the
/// admin helper.
struct World {
    k: Kit,
    queue: String,
    helper: PathBuf,
    /// Alerts read from the queue so far.
    alerts: Vec<Value>,
}

impl World {
    /// moto with enforcement; the versioned `tfstate` bucket; the `breakglass` topic
    /// with the `alerts` queue subscribed; the deploy role may use S3, publish to the
    /// topic and read its attributes.
    fn new() -> World {
        let k = Kit::new();
        let helper = k.sb.root().join("admin.py");
        std::fs::write(&helper, ADMIN_PY).unwrap();
        let mut w = World {
            k,
            queue: String::new(),
            helper,
            alerts: Vec::new(),
        };
        let out = w.admin(&["setup-sink"]);
        assert_eq!(out["topic"], TOPIC);
        w.queue = out["queue"].as_str().unwrap().to_string();
        w.grant();
        w
    }

    fn admin(&self, args: &[&str]) -> Value {
        let admin = self.k.bed.user("admin");
        let out = std::process::Command::new(python())
            .arg(&self.helper)
            .args([&self.k.moto.endpoint, &admin.key, &admin.secret])
            .args(args)
            .output()
            .expect("cannot run the admin helper");
        assert!(out.status.success(), "admin {args:?}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("the admin helper printed no JSON")
    }

    /// The deploy role may do everything the trail needs.
    fn grant(&self) {
        self.admin(&[
            "role-policy",
            "deploy",
            "*",
            "sns:Publish,sns:GetTopicAttributes",
        ]);
    }

    /// The deploy role keeps S3 on the bucket and the state (`p/`) but has no
    /// permission on the trail's prefix.
    fn deny_trail(&self) {
        self.admin(&[
            "role-policy",
            "deploy",
            "arn:aws:s3:::tfstate,arn:aws:s3:::tfstate/p/*",
            "sns:Publish,sns:GetTopicAttributes",
        ]);
    }

    /// Every object under the trail's prefix: (key, number of versions, body).
    fn objects(&self) -> Vec<(String, u64, Value)> {
        self.admin(&["objects", PREFIX])["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| {
                (
                    o["key"].as_str().unwrap().to_string(),
                    o["versions"].as_u64().unwrap(),
                    o["body"].clone(),
                )
            })
            .collect()
    }

    /// The event documents under the prefix, each checked to sit under its own key.
    fn events(&self) -> Vec<Value> {
        self.objects()
            .into_iter()
            .map(|(key, versions, body)| {
                assert_eq!(versions, 1, "{key} was written more than once");
                let id = body["event_id"].as_str().unwrap();
                assert!(
                    key.starts_with(PREFIX) && key.ends_with(&format!("-{id}.json")),
                    "{key} is not <prefix><date>/<time>-<event id>.json"
                );
                body
            })
            .collect()
    }

    /// Every alert received so far (the queue is drained into `alerts`).
    fn alerts(&mut self) -> &[Value] {
        let got = self.admin(&["messages", &self.queue.clone()]);
        self.alerts
            .extend(got["messages"].as_array().unwrap().iter().cloned());
        &self.alerts
    }

    /// A project `name` in break-glass mode with the trail and the topic, and `files`.
    fn project(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let toml = Kit::deploy_toml(
            true,
            &format!("[audit]\ns3 = \"s3://tfstate/{PREFIX}\"\nsns_topic_arn = \"{TOPIC}\"\n"),
        );
        let mut all = vec![(".breakglass.toml", toml.as_str())];
        all.extend_from_slice(files);
        self.k.dir(name, &all)
    }

    /// The queued events of this sandbox's user: the entry files.
    fn queued(&self) -> Vec<PathBuf> {
        queued_in(&self.k.state_dir())
    }
}

fn queued_in(state: &Path) -> Vec<PathBuf> {
    let root = state.join("audit-queue");
    let mut out = Vec::new();
    for d in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for f in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            if f.path().extension().is_some_and(|x| x == "json") {
                out.push(f.path());
            }
        }
    }
    out.sort();
    out
}

/// A `main.tf` for the real terraform: the S3 backend on moto (key `p/...`), one
/// `terraform_data` resource, a secret-looking variable and a sleep for the killed run.
const MAIN_TF: &str = r#"
variable "db_password" {
  default = ""
}
variable "sleep" {
  default = "0"
}
resource "terraform_data" "r" {
  triggers_replace = [timestamp()]
  provisioner "local-exec" {
    command = "sleep ${var.sleep}"
  }
}
"#;

fn main_tf(key: &str) -> String {
    format!(
        "{}\n{MAIN_TF}",
        S3_BACKEND.replace("p/terraform.tfstate", &format!("p/{key}/terraform.tfstate"))
    )
}

/// Uses the real terraform instead of the kit's fake one.
fn use_real_terraform(sb: &Sandbox) {
    let _ = std::fs::remove_file(sb.real_dir.join("terraform"));
    sb.real_terraform();
}

/// The events of one run, by event type.
fn by_type<'a>(events: &'a [Value], run_id: &str) -> BTreeMap<String, &'a Value> {
    events
        .iter()
        .filter(|e| e["run_id"] == run_id)
        .map(|e| (e["event"].as_str().unwrap().to_string(), e))
        .collect()
}

fn shown(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status,
        stdout(o),
        stderr(o)
    )
}

#[test]
fn one_apply_leaves_a_start_an_end_and_one_alert() {
    let mut w = World::new();
    use_real_terraform(&w.k.sb);
    let proj = w.project("proj", &[("main.tf", &main_tf("one"))]);
    let reason = [("BREAKGLASS_REASON", "INC-42 platform down")];

    let init =
        w.k.terraform(&proj, &["init", "-input=false", "-no-color"], &reason);
    assert_eq!(code(&init), 0, "{}", shown(&init));
    let apply = w.k.terraform(
        &proj,
        &[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-var=db_password=hunter2",
        ],
        &reason,
    );
    assert_eq!(code(&apply), 0, "{}", shown(&apply));
    assert!(
        !stderr(&apply).contains("warning"),
        "the trail was reached: {}",
        shown(&apply)
    );

    let events = w.events();
    let starts: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "start" && e["subcommand"] == "apply")
        .collect();
    assert_eq!(starts.len(), 1, "{events:#?}");
    let start = starts[0];
    let run = by_type(&events, start["run_id"].as_str().unwrap());
    assert_eq!(
        run.keys().collect::<Vec<_>>(),
        ["end", "start"],
        "{events:#?}"
    );
    let end = run["end"];
    for e in [start, end] {
        assert_eq!(e["role_arn"], role_arn("deploy"), "{e}");
        assert_eq!(e["user"], "alice", "{e}");
        assert_eq!(e["source_arn"], user_arn("alice"), "{e}");
        assert_eq!(e["reason"], "INC-42 platform down", "{e}");
        assert_eq!(e["kind"], "terraform", "{e}");
        assert_eq!(
            e["args"],
            serde_json::json!([
                "apply",
                "-auto-approve",
                "-input=false",
                "-no-color",
                "-var=db_password=<redacted>"
            ]),
            "{e}"
        );
        assert_eq!(e["project"], proj.to_str().unwrap(), "{e}");
    }
    assert_eq!(start["exit_code"], Value::Null, "{start}");
    assert_eq!(end["exit_code"], 0, "{end}");
    assert_ne!(start["event_id"], end["event_id"]);
    assert!(!end["ended"].as_str().unwrap().is_empty(), "{end}");
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("hunter2"), "the -var value is redacted");
    // The init was recorded too, and it pages nobody.
    assert!(
        events
            .iter()
            .any(|e| e["subcommand"] == "init" && e["event"] == "end" && e["exit_code"] == 0),
        "{events:#?}"
    );

    // One alert: the apply's start (the init changes nothing).
    let alerts = w.alerts().to_vec();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let message = alerts[0]["message"].as_str().unwrap();
    let subject = alerts[0]["subject"].as_str().unwrap();
    assert!(
        subject.contains("alice") && subject.contains("apply") && subject.contains("deploy"),
        "{subject}"
    );
    assert!(
        message.contains("INC-42 platform down")
            && message.contains(start["event_id"].as_str().unwrap())
            && !message.contains("hunter2"),
        "{message}"
    );
    assert!(w.queued().is_empty(), "nothing left queued");
    w.k.finish();
}
