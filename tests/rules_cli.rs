//! `khien rules check` as a user runs it.

use std::process::Command;

fn khien() -> Command {
    Command::new(env!("CARGO_BIN_EXE_khien"))
}

fn data_dir() -> std::path::PathBuf {
    let d: std::path::PathBuf = std::env::var_os("KHIEN_DATA")
        .map(Into::into)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data").into());
    assert!(
        d.join("etopen").is_dir(),
        "reference data not found at {}",
        d.display()
    );
    d
}

#[test]
fn reports_each_bad_rule_with_position_and_code() {
    let dir = std::env::temp_dir().join(format!("khien-rules-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("mixed.rules");
    std::fs::write(
        &f,
        "# a comment\n\
         alert tcp any any -> any any (msg:\"good\"; content:\"a\"; sid:1;)\n\
         alert tcp any any -> any any (msg:\"bad\"; bogus; sid:2;)\n\
         alert http any any -> any any (msg:\"continued\"; \\\n    content:\"x\"; http_uri; sid:3;)\n\
         alert tcp any any -> any any (msg:\"dup\"; sid:1;)\n",
    )
    .unwrap();
    let out = khien().args(["rules", "check"]).arg(&f).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let path = f.display().to_string();
    assert!(
        stdout.contains(&format!(
            "{path}:3:42: error[E301]: unknown keyword `bogus` (sid 2)"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("{path}:6:1: error[E402]")),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("2 rules loaded, 2 failed"),
        "{stdout}"
    );

    let out = khien()
        .args(["rules", "check", "--print"])
        .arg(&f)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains(
            "alert http any any -> any any (msg:\"continued\"; http.uri; content:\"x\"; sid:3;)"
        ),
        "{stdout}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn et_open_2024_checks_clean() {
    let out = khien()
        .args(["rules", "check"])
        .arg(data_dir().join("etopen/et-open-2024-04-18"))
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("24827 rules loaded, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn missing_file_is_a_clear_error() {
    let out = khien()
        .args(["rules", "check", "/nonexistent/x.rules"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("/nonexistent/x.rules"), "{stderr}");
}
