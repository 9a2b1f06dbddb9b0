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

#[test]
fn on_and_off_each_leave_an_event_and_on_pages() {
    let mut w = World::new();
    let proj = w.project("proj", &[]);
    let dir = proj.to_str().unwrap();

    let on = w.k.breakglass(&[
        "-C",
        dir,
        "on",
        "--reason",
        "INC-7 platform down",
        "--for",
        "2h",
    ]);
    assert_ok(&on);
    assert!(!stderr(&on).contains("warning"), "{}", shown(&on));
    let off = w.k.breakglass(&["-C", dir, "off"]);
    assert_ok(&off);
    assert!(!stderr(&off).contains("warning"), "{}", shown(&off));

    let events = w.events();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "on").count(),
        1,
        "{events:#?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "off").count(),
        1,
        "{events:#?}"
    );
    assert_eq!(events.len(), 2, "nothing else: {events:#?}");
    let on_event = events.iter().find(|e| e["event"] == "on").unwrap();
    let off_event = events.iter().find(|e| e["event"] == "off").unwrap();
    for e in [on_event, off_event] {
        assert_eq!(e["user"], "alice", "{e}");
        assert_eq!(e["role_arn"], role_arn("deploy"), "{e}");
        assert_eq!(e["source_arn"], user_arn("alice"), "{e}");
        assert_eq!(e["project"], dir, "{e}");
        assert_eq!(e["reason"], "INC-7 platform down", "{e}");
    }
    assert!(on_event["until"].is_string(), "{on_event}");

    // `on` pages, `off` does not.
    let alerts = w.alerts().to_vec();
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let message = alerts[0]["message"].as_str().unwrap();
    assert!(
        message.contains("switched break-glass mode on")
            && message.contains("INC-7 platform down")
            && message.contains(on_event["event_id"].as_str().unwrap()),
        "{message}"
    );
    w.k.finish();
}

#[test]
fn doctor_audit_sink_passes_with_the_permissions_and_names_the_missing_one() {
    let mut w = World::new();
    let proj = w.project("proj", &[("main.tf", S3_BACKEND)]);

    let (_, checks) = w.k.doctor(&proj);
    let c = check(&checks, "audit.sink");
    assert_eq!(c["status"], "pass", "{checks:#?}");
    let events = w.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0]["event"], "doctor");
    assert_eq!(events[0]["user"], "alice");
    assert_eq!(events[0]["role_arn"], role_arn("deploy"));
    assert!(w.alerts().is_empty(), "the doctor pages nobody");

    // No S3 permission on the prefix.
    w.deny_trail();
    let (_, checks) = w.k.doctor(&proj);
    let c = check(&checks, "audit.sink");
    assert_eq!(c["status"], "fail", "{checks:#?}");
    let fix = c["fix"].as_str().unwrap();
    assert!(
        fix.contains("s3:PutObject")
            && fix.contains(&format!("arn:aws:s3:::tfstate/{PREFIX}*"))
            && fix.contains(&role_arn("deploy")),
        "{c}"
    );
    // The rest of the role's S3 access is unaffected.
    assert_eq!(status(&checks, "state.access"), "pass", "{checks:#?}");

    // S3 back, but the topic may not be seen.
    w.admin(&["role-policy", "deploy", "*", "sns:Publish"]);
    let (out, checks) = w.k.doctor(&proj);
    let c = check(&checks, "audit.sink");
    assert_eq!(c["status"], "fail", "{checks:#?}");
    assert_eq!(code(&out), 1);
    let fix = c["fix"].as_str().unwrap();
    assert!(
        fix.contains("sns:GetTopicAttributes") && fix.contains(TOPIC),
        "{c}"
    );
    // The human output shows it with its fix line.
    let human = w.k.breakglass(&["-C", proj.to_str().unwrap(), "doctor"]);
    let text = stdout(&human);
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL") && l.contains("audit.sink")),
        "{text}"
    );
    assert!(text.contains("fix: allow"), "{text}");
    w.k.finish();
}

/// A loopback proxy for S3 that SIGKILLs the process `pid` as soon as the first
/// PutObject has reached moto, before its answer gets back: the flush is interrupted
/// right after the object was written and before the queue entry could be removed.
/// (An interruption at exactly that point cannot be produced otherwise.)
struct KillAfterFirstPut {
    endpoint: String,
    pid: Arc<AtomicI32>,
    puts: Arc<AtomicUsize>,
    fired: Arc<AtomicBool>,
}

impl KillAfterFirstPut {
    fn start(upstream: u16) -> KillAfterFirstPut {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let pid = Arc::new(AtomicI32::new(0));
        let puts = Arc::new(AtomicUsize::new(0));
        let fired = Arc::new(AtomicBool::new(false));
        let (p, n, f) = (pid.clone(), puts.clone(), fired.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    continue;
                };
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let put_sent = Arc::new(AtomicBool::new(false));
                let (seen, count) = (put_sent.clone(), n.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64 * 1024];
                    loop {
                        let k = match client.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(k) => k,
                        };
                        if buf[..k].starts_with(b"PUT ") {
                            count.fetch_add(1, Ordering::SeqCst);
                            seen.store(true, Ordering::SeqCst);
                        }
                        if server.write_all(&buf[..k]).is_err() {
                            break;
                        }
                    }
                    let _ = server.shutdown(std::net::Shutdown::Write);
                });
                let (pid, fired) = (p.clone(), f.clone());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 64 * 1024];
                    loop {
                        let k = match s2.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(k) => k,
                        };
                        let interim = buf[..k].starts_with(b"HTTP/1.1 100");
                        if put_sent.load(Ordering::SeqCst)
                            && !interim
                            && !fired.swap(true, Ordering::SeqCst)
                        {
                            let target = pid.load(Ordering::SeqCst);
                            assert!(target > 0, "no process to interrupt");
                            // SAFETY: kill(2) on the test's own child.
                            unsafe { libc::kill(target, libc::SIGKILL) };
                            break;
                        }
                        if c2.write_all(&buf[..k]).is_err() {
                            break;
                        }
                    }
                    let _ = c2.shutdown(std::net::Shutdown::Write);
                });
            }
        });
        KillAfterFirstPut {
            endpoint: format!("http://127.0.0.1:{port}"),
            pid,
            puts,
            fired,
        }
    }
}

/// Seconds since the epoch, as `date +%s.%N` prints them.
fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[test]
fn a_denied_sink_queues_without_delay_and_a_later_run_flushes_each_event_once() {
    let mut w = World::new();
    let proj = w.project("proj", &[]);
    w.deny_trail();

    // The fake terraform stamps the moment it is done, so the time the shim spends
    // after it (waiting for the trail) is measured on its own.
    let stamp = w.k.sb.root().join("tf-done");
    let stamp_run = format!("date +%s.%N > {}", stamp.display());
    let apply = w.k.terraform(
        &proj,
        &["apply", "-auto-approve"],
        &[("FAKE_TF_RUN", &stamp_run), ("BREAKGLASS_REASON", "INC-9")],
    );
    let ended = epoch_now();
    assert_eq!(code(&apply), 0, "the run succeeds: {}", shown(&apply));
    let tf_done: f64 = std::fs::read_to_string(&stamp)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let held = Duration::from_secs_f64((ended - tf_done).max(0.0));
    assert!(held < BOUND, "held up {held:?} after terraform ended");
    let err = stderr(&apply);
    assert!(
        err.contains("team audit trail")
            && err.contains("s3:PutObject")
            && err.contains("log --flush"),
        "says the trail was not reached and what to do: {err}"
    );
    let queued = w.queued();
    assert_eq!(queued.len(), 2, "start and end are queued: {queued:?}");
    for q in &queued {
        assert_eq!(mode(q), 0o600, "{}", q.display());
        assert_eq!(mode(q.parent().unwrap()), 0o700);
    }
    assert!(w.objects().is_empty(), "nothing reached the prefix");
    // SNS is allowed: the alert went out at once, and is not queued again.
    assert_eq!(w.alerts().len(), 1);

    // A second denied run queues its own two.
    let plan = w.k.terraform(&proj, &["plan"], &[]);
    assert_eq!(code(&plan), 0, "{}", shown(&plan));
    assert_eq!(w.queued().len(), 4);

    // Granted: a flush is killed right after its first PutObject reached S3.
    w.grant();
    let proxy = KillAfterFirstPut::start(w.k.moto.port);
    let mut cmd =
        w.k.sb
            .breakglass(&["-C", proj.to_str().unwrap(), "log", "--flush"]);
    cmd.env("AWS_ENDPOINT_URL_S3", &proxy.endpoint)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    proxy.pid.store(child.id() as i32, Ordering::SeqCst);
    let out = child.wait_with_output().unwrap();
    w.k.observe(&out);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(out.status.signal(), Some(libc::SIGKILL), "{}", shown(&out));
    assert!(proxy.fired.load(Ordering::SeqCst));
    assert_eq!(proxy.puts.load(Ordering::SeqCst), 1);
    assert_eq!(w.objects().len(), 1, "the first event reached S3");
    assert_eq!(w.queued().len(), 4, "but its entry was not removed");

    // The next run sends all of them: the interrupted one again (412: already there).
    let plan = w.k.terraform(&proj, &["plan"], &[]);
    assert_eq!(code(&plan), 0, "{}", shown(&plan));
    assert!(!stderr(&plan).contains("warning"), "{}", shown(&plan));
    assert!(w.queued().is_empty(), "{:?}", w.queued());
    let events = w.events(); // each key has exactly one version
    assert_eq!(events.len(), 6, "{events:#?}");
    let ids: BTreeSet<&str> = events
        .iter()
        .map(|e| e["event_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 6, "no event twice");
    let runs: BTreeSet<&str> = events
        .iter()
        .map(|e| e["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(runs.len(), 3);
    for run in &runs {
        let types = by_type(&events, run);
        assert_eq!(types.keys().collect::<Vec<_>>(), ["end", "start"], "{run}");
    }
    assert!(
        events.iter().any(|e| e["subcommand"] == "apply"
            && e["event"] == "end"
            && e["exit_code"] == 0
            && e["reason"] == "INC-9"),
        "{events:#?}"
    );
    assert_eq!(w.alerts().len(), 1, "the apply's alert went out once");

    // Nothing is left to flush.
    let again =
        w.k.breakglass(&["-C", proj.to_str().unwrap(), "log", "--flush"]);
    assert_ok(&again);
    assert!(
        stderr(&again).contains("nothing is queued"),
        "{}",
        shown(&again)
    );
    assert_eq!(w.events().len(), 6);
    w.k.finish();
}

#[test]
fn two_users_runs_pair_start_to_end_and_a_killed_run_never_ends() {
    let mut w = World::new();
    w.admin(&["trust", "deploy", "alice", "bob"]);
    use_real_terraform(&w.k.sb);
    let alice_proj = w.project("alice-proj", &[("main.tf", &main_tf("alice"))]);
    // Bob: his own HOME, identity and checkout.
    let mut bob = Sandbox::new();
    bob.aws_as(&w.k.moto, &w.k.bed.user("bob"));
    bob.set("AWS_DEFAULT_REGION", "us-east-1")
        .set("USER", "bob");
    bob.real_terraform();
    let bob_proj = bob.root().join("bob-proj");
    std::fs::create_dir_all(&bob_proj).unwrap();
    for f in [".breakglass.toml", "main.tf"] {
        std::fs::copy(alice_proj.join(f), bob_proj.join(f)).unwrap();
    }
    std::fs::write(bob_proj.join("main.tf"), main_tf("bob")).unwrap();

    let apply = ["apply", "-auto-approve", "-input=false", "-no-color"];
    let reason = [("BREAKGLASS_REASON", "INC-11")];
    for args in [&["init", "-input=false", "-no-color"][..], &apply] {
        let out = w.k.terraform(&alice_proj, args, &reason);
        assert_eq!(code(&out), 0, "alice {args:?}: {}", shown(&out));
        let mut cmd = bob.terraform(&bob_proj, args);
        cmd.envs(reason).stdin(Stdio::null());
        let out = cmd.output().unwrap();
        w.k.observe(&out);
        assert_eq!(code(&out), 0, "bob {args:?}: {}", shown(&out));
    }

    // Alice's third run sleeps in its provisioner and is killed with SIGKILL once its
    // start is in the trail.
    let starts = |w: &World| {
        w.events()
            .into_iter()
            .filter(|e| e["event"] == "start")
            .count()
    };
    let before = starts(&w);
    let mut cmd = w.k.sb.terraform(
        &alice_proj,
        &[
            "apply",
            "-auto-approve",
            "-input=false",
            "-no-color",
            "-var=sleep=60",
        ],
    );
    cmd.envs(reason)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while starts(&w) == before {
        assert!(
            Instant::now() < deadline,
            "the killed run's start never arrived"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let pid = child.id() as i32;
    // SAFETY: kill(2) on the test's own child, then on the process group it leads.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::kill(-pid, libc::SIGKILL);
    }
    let _ = child.wait();

    let out = w.k.breakglass(&[
        "-C",
        alice_proj.to_str().unwrap(),
        "log",
        "--team",
        "--json",
        "--since",
        "1h",
    ]);
    assert_ok(&out);
    let view: Value = serde_json::from_slice(&out.stdout).expect("log --team --json");
    let runs = view["runs"].as_array().unwrap();
    let applies: Vec<&Value> = runs.iter().filter(|r| r["subcommand"] == "apply").collect();
    assert_eq!(applies.len(), 3, "{runs:#?}");
    for user in ["alice", "bob"] {
        let done: Vec<&&Value> = applies
            .iter()
            .filter(|r| r["user"] == user && r["status"] == "ended")
            .collect();
        assert_eq!(done.len(), 1, "{user}: {runs:#?}");
        let r = done[0];
        assert_eq!(r["exit_code"], 0, "{r}");
        assert_eq!(r["role_arn"], role_arn("deploy"), "{r}");
        assert_eq!(r["source_arn"], user_arn(user), "{r}");
        assert_eq!(r["reason"], "INC-11", "{r}");
        assert!(
            r["start_event_id"].is_string() && r["end_event_id"].is_string(),
            "paired: {r}"
        );
        assert!(r["ended"].is_string(), "{r}");
    }
    let killed: Vec<&&Value> = applies
        .iter()
        .filter(|r| r["status"] == "never ended")
        .collect();
    assert_eq!(killed.len(), 1, "{runs:#?}");
    assert_eq!(killed[0]["user"], "alice");
    assert_eq!(killed[0]["ended"], Value::Null);
    assert_eq!(killed[0]["exit_code"], Value::Null);
    assert!(
        killed[0]["args"]
            .to_string()
            .contains("-var=sleep=<redacted>"),
        "{}",
        killed[0]
    );
    // The inits are there too, paired; no other run is open.
    assert_eq!(
        runs.iter().filter(|r| r["status"] == "never ended").count(),
        1
    );
    assert_eq!(
        runs.iter()
            .filter(|r| r["subcommand"] == "init" && r["status"] == "ended")
            .count(),
        2,
        "{runs:#?}"
    );

    // The human view says the same.
    let out =
        w.k.breakglass(&["-C", alice_proj.to_str().unwrap(), "log", "--team"]);
    assert_ok(&out);
    let text = stdout(&out);
    assert_eq!(
        text.lines().filter(|l| l.contains("NEVER ENDED")).count(),
        1,
        "{text}"
    );
    assert!(text.contains("bob@") && text.contains("alice@"), "{text}");
    w.k.finish();
}
