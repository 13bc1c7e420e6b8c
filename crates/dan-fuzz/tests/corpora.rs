//! Replays every stored input of every fuzz target (the corpora in
//! `fuzz/corpus/<target>/` and the inputs that once crashed, in
//! `fuzz/regressions/<target>/`) through the same harness the fuzzer runs:
//! what was fixed stays fixed, in seconds, without a fuzzing toolchain.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_corpus_and_survives_it() {
    for (name, harness) in dan_fuzz::TARGETS {
        let corpus = inputs(&fuzz_dir().join("corpus").join(name));
        assert!(
            !corpus.is_empty(),
            "fuzz/corpus/{name} is empty: run `cargo run -p dan-fuzz --bin fuzz-seeds`"
        );
        let regressions = inputs(&fuzz_dir().join("regressions").join(name));
        for path in corpus.iter().chain(&regressions) {
            let input = std::fs::read(path).expect("corpus file");
            harness(&input);
        }
    }
}

#[test]
fn seeds_are_accepted_by_their_decoders() {
    // A seed that its own decoder refuses would start the fuzzer from
    // nothing: each must get past the first check.
    for (name, input) in dan_fuzz::seeds::seeds() {
        assert!(
            dan_fuzz::decodes(name, &input),
            "the seed for {name} is refused by its decoder"
        );
    }
}

#[test]
fn every_target_folder_is_a_known_target() {
    let names: Vec<&str> = dan_fuzz::TARGETS.iter().map(|(n, _)| *n).collect();
    for sub in ["corpus", "regressions"] {
        for dir in std::fs::read_dir(fuzz_dir().join(sub))
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = dir.file_name().to_string_lossy().into_owned();
            assert!(
                names.contains(&name.as_str()),
                "fuzz/{sub}/{name} is no target"
            );
        }
    }
}
