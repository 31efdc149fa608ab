//! `scripts/install-deps.sh` finds exactly the libclang that bindgen loads. Each case points the
//! script at a folder of empty files standing for a machine's libraries, with the package manager
//! left out, and reads what it would install (`--dry-run` installs nothing).

use std::path::Path;
use std::process::Command;

/// The script's findings (stderr) with only the given file names in its library folder.
fn dry_run_with_libraries(files: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    for file in files {
        std::fs::write(dir.path().join(file), b"").unwrap();
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/install-deps.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg("--dry-run")
        .env("INSTALL_DEPS_LIB_DIRS", dir.path())
        .env("INSTALL_DEPS_NO_DPKG", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "install-deps failed: {stderr}");
    stderr
}

fn installs_libclang(stderr: &str) -> bool {
    stderr.contains("missing libclang for bindgen: will install libclang-dev")
}

#[test]
fn the_cxx_interface_library_alone_is_not_libclang() {
    let found = dry_run_with_libraries(&["libclang-cpp.so.14", "libclang-cpp.so"]);
    assert!(installs_libclang(&found), "{found}");
    assert!(
        found.contains("would install:") && found.contains("libclang-dev"),
        "{found}"
    );
}

#[test]
fn an_empty_library_folder_needs_libclang() {
    let found = dry_run_with_libraries(&[]);
    assert!(installs_libclang(&found), "{found}");
}

#[test]
fn every_name_bindgen_loads_counts_as_libclang() {
    for name in [
        "libclang.so",
        "libclang-14.so",
        "libclang.so.1",
        "libclang-14.so.1",
        "libclang-18.1.so.18.1",
    ] {
        let found = dry_run_with_libraries(&["libclang-cpp.so.14", name]);
        assert!(!installs_libclang(&found), "{name}: {found}");
        assert!(
            found.contains("found libclang for bindgen: ") && found.contains(name),
            "{name}: {found}"
        );
    }
}
