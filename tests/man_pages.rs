//! `breakglass man DIR`: manual pages for the tool and every command, from the same
//! definitions as `--help`.

mod support;

use support::*;

#[test]
fn man_writes_a_page_for_the_tool_and_each_command() {
    let sb = Sandbox::new();
    let dir = sb.root().join("share/man/man1");
    let out = sb
        .breakglass(&["man", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "pages go to files, not stdout");
    assert!(
        stderr(&out).contains(&format!(
            "man -M {} breakglass",
            sb.root().join("share/man").display()
        )),
        "{}",
        stderr(&out)
    );
    let page = |name: &str| {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let top = page("breakglass.1");
    assert!(top.contains(".TH breakglass 1 "), "{top}");
    let source = format!("\"breakglass {}\"", env!("CARGO_PKG_VERSION"));
    assert!(top.contains(&source), "{top}");
    for cmd in ["status", "doctor", "credentials", "exec", "install", "man"] {
        assert!(
            top.contains(&format!("breakglass\\-{cmd}(1)")),
            "{cmd} is listed in breakglass.1"
        );
        let p = page(&format!("breakglass-{cmd}.1"));
        assert!(p.contains(&format!(".TH breakglass-{cmd} 1 ")), "{p}");
        assert!(p.contains(&source), "{p}");
    }
    let doctor = page("breakglass-doctor.1");
    assert!(
        doctor.contains("junit") && doctor.contains("\\-\\-format"),
        "{doctor}"
    );
    let creds = page("breakglass-credentials.1");
    assert!(creds.contains("terragrunt"), "{creds}");
}

#[test]
fn man_into_a_place_it_cannot_write_says_so() {
    let sb = Sandbox::new();
    let file = sb.root().join("a-file");
    std::fs::write(&file, "").unwrap();
    let out = sb
        .breakglass(&["man", file.join("man1").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(125), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot create") && stderr(&out).contains("  fix: "),
        "{}",
        stderr(&out)
    );
}
