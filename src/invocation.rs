//! Reading a `terraform` command line the way terraform itself reads it.
//!
//! The shim never rewrites arguments; it only looks at them to learn three things:
//! the `-chdir=DIR` global option (which moves the project), the subcommand (which
//! decides whether credentials are needed at all, and which role), and the name the
//! shim was started as (`terraform` or `tofu`).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// One `terraform ...` command line, as typed.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The name the shim was started as (`terraform`, `tofu`): the default real binary.
    pub name: String,
    /// Every argument after the program name, byte for byte.
    pub args: Vec<OsString>,
    /// The `-chdir=DIR` global option, when it stands before the subcommand.
    pub chdir: Option<PathBuf>,
    /// Index in `args` of the subcommand, if there is one.
    sub_index: Option<usize>,
}

/// Global options and spellings that never touch state, providers or credentials.
const PASSTHROUGH_FLAGS: &[&str] = &[
    "-version",
    "--version",
    "-v",
    "-help",
    "--help",
    "-h",
    "-install-autocomplete",
    "-uninstall-autocomplete",
];

/// Subcommands that never touch state, providers or credentials.
const PASSTHROUGH_COMMANDS: &[&str] = &["version", "help", "fmt", "metadata"];

/// Subcommands that only read: `read_arn` is used for these when it is set.
const READ_ONLY_COMMANDS: &[&str] = &["plan", "show", "output", "graph", "console", "providers"];

/// `state` and `workspace` subcommands that only read.
const READ_ONLY_STATE: &[&str] = &["list", "pull", "show"];

impl Invocation {
    /// Reads the arguments. Like terraform, only options before the subcommand are
    /// global, and only the `-chdir=DIR` spelling sets the working directory.
    pub fn parse(name: impl Into<String>, args: Vec<OsString>) -> Self {
        let mut chdir = None;
        let mut sub_index = None;
        for (i, arg) in args.iter().enumerate() {
            let bytes = arg.as_bytes();
            if let Some(dir) = bytes.strip_prefix(b"-chdir=") {
                chdir = Some(PathBuf::from(OsStr::from_bytes(dir)));
                continue;
            }
            if bytes.starts_with(b"-") {
                // Any other global option (-version, -help, ...).
                continue;
            }
            sub_index = Some(i);
            break;
        }
        Invocation {
            name: name.into(),
            args,
            chdir,
            sub_index,
        }
    }

    /// The subcommand (`plan`, `apply`, `state`, ...), if one was given.
    pub fn subcommand(&self) -> Option<&str> {
        self.sub_index
            .and_then(|i| self.args.get(i))
            .and_then(|a| a.to_str())
    }

    /// The arguments after the subcommand.
    pub fn sub_args(&self) -> &[OsString] {
        match self.sub_index {
            Some(i) => &self.args[i + 1..],
            None => &[],
        }
    }

    /// The first argument after the subcommand that is not an option (`state list` → `list`).
    fn sub_subcommand(&self) -> Option<&str> {
        self.sub_args()
            .iter()
            .filter_map(|a| a.to_str())
            .find(|a| !a.starts_with('-'))
    }

    /// True for commands that never need credentials: `version`, `fmt`, `-help`, a bare
    /// `terraform`, and the like. These pass through in every mode.
    pub fn is_passthrough(&self) -> bool {
        let global_flag = self.args[..self.sub_index.unwrap_or(self.args.len())]
            .iter()
            .filter_map(|a| a.to_str())
            .any(|a| PASSTHROUGH_FLAGS.contains(&a));
        match self.subcommand() {
            _ if global_flag => true,
            None => true,
            Some(sub) => {
                PASSTHROUGH_COMMANDS.contains(&sub)
                    || self
                        .sub_args()
                        .iter()
                        .any(|a| a == "-help" || a == "--help" || a == "-h")
            }
        }
    }

    /// True for commands that only read state: `plan`, `show`, `output`, `state list|pull|show`, ...
    pub fn is_read_only(&self) -> bool {
        match self.subcommand() {
            Some("state") | Some("workspace") => self
                .sub_subcommand()
                .is_some_and(|s| READ_ONLY_STATE.contains(&s)),
            Some(sub) => READ_ONLY_COMMANDS.contains(&sub),
            None => false,
        }
    }

    /// The directory terraform will run in: `-chdir` taken relative to `cwd`, with
    /// symlinks and `..` resolved as the kernel would (lexically if it does not exist).
    pub fn workdir(&self, cwd: &Path) -> PathBuf {
        let dir = match &self.chdir {
            Some(dir) => cwd.join(dir),
            None => cwd.to_path_buf(),
        };
        std::fs::canonicalize(&dir).unwrap_or_else(|_| normalize(&dir))
    }
}

/// Removes `.` and `..` without touching the filesystem.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(args: &[&str]) -> Invocation {
        Invocation::parse("terraform", args.iter().map(OsString::from).collect())
    }

    #[test]
    fn chdir_only_before_the_subcommand() {
        assert_eq!(
            inv(&["-chdir=proj", "plan"]).chdir,
            Some(PathBuf::from("proj"))
        );
        assert_eq!(inv(&["plan", "-chdir=proj"]).chdir, None);
        assert_eq!(inv(&["plan", "-chdir=proj"]).subcommand(), Some("plan"));
        // Only the `=` form is terraform's; `-chdir proj` makes `proj` the subcommand.
        assert_eq!(inv(&["-chdir", "proj"]).chdir, None);
        // The last one wins, as with Go's flag package.
        assert_eq!(
            inv(&["-chdir=a", "-chdir=b", "apply"]).chdir,
            Some(PathBuf::from("b"))
        );
    }

    #[test]
    fn chdir_is_relative_to_the_working_directory() {
        let i = inv(&["-chdir=../proj", "plan"]);
        assert_eq!(
            i.workdir(Path::new("/nonexistent/x")),
            PathBuf::from("/nonexistent/proj")
        );
        let i = inv(&["-chdir=/abs", "plan"]);
        assert_eq!(
            i.workdir(Path::new("/nonexistent/x")),
            PathBuf::from("/abs")
        );
    }

    #[test]
    fn passthrough_commands() {
        for args in [
            &["version"][..],
            &["-version"],
            &["-help"],
            &["fmt", "-recursive"],
            &["-install-autocomplete"],
            &[],
            &["plan", "-help"],
            &["-chdir=x", "version"],
        ] {
            assert!(inv(args).is_passthrough(), "{args:?}");
        }
        for args in [
            &["plan"][..],
            &["apply", "-auto-approve"],
            &["init"],
            &["state", "list"],
        ] {
            assert!(!inv(args).is_passthrough(), "{args:?}");
        }
    }

    #[test]
    fn read_only_commands() {
        for args in [
            &["plan"][..],
            &["show"],
            &["output", "-json"],
            &["state", "list"],
            &["state", "pull"],
        ] {
            assert!(inv(args).is_read_only(), "{args:?}");
        }
        for args in [
            &["apply"][..],
            &["destroy"],
            &["state", "rm", "x"],
            &["state", "push", "f"],
            &["init"],
            &["import"],
        ] {
            assert!(!inv(args).is_read_only(), "{args:?}");
        }
    }

    #[test]
    fn non_utf8_arguments_are_kept() {
        let raw = OsString::from(OsStr::from_bytes(b"-var=x=\xff\xfe"));
        let i = Invocation::parse("terraform", vec!["apply".into(), raw.clone()]);
        assert_eq!(i.args[1], raw);
        assert_eq!(i.subcommand(), Some("apply"));
    }

    mod properties {
        //! Any command line at all: never a panic, and the arguments are never changed.
        use super::*;
        use proptest::prelude::*;
        use std::os::unix::ffi::OsStringExt;

        fn arg() -> impl Strategy<Value = Vec<u8>> {
            prop_oneof![
                Just(b"plan".to_vec()),
                Just(b"state".to_vec()),
                Just(b"list".to_vec()),
                Just(b"-chdir=".to_vec()),
                Just(b"-help".to_vec()),
                Just(b"version".to_vec()),
                "-chdir=[ -~]{0,20}".prop_map(String::into_bytes),
                "-?[a-z-]{0,12}".prop_map(String::into_bytes),
                proptest::collection::vec(any::<u8>(), 0..24),
            ]
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(10_000))]
            #[test]
            fn any_command_line_is_read_without_panic(
                args in proptest::collection::vec(arg(), 0..8),
            ) {
                let args: Vec<OsString> = args.into_iter().map(OsString::from_vec).collect();
                let i = Invocation::parse("terraform", args.clone());
                prop_assert_eq!(&i.args, &args);
                let _ = i.subcommand();
                let _ = i.sub_args();
                let read_only = i.is_read_only();
                let passthrough = i.is_passthrough();
                if i.subcommand().is_none() {
                    prop_assert!(passthrough && !read_only);
                }
                let _ = i.workdir(Path::new("/tmp"));
            }
        }
    }
}
