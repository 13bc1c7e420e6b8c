//! Writes the seed inputs into `fuzz/corpus/<target>/` (or the folder
//! given), each named by its BLAKE3 hash, as libFuzzer names corpus files.

use std::path::PathBuf;

fn main() -> std::io::Result<()> {
    let root = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("fuzz/corpus"), PathBuf::from);
    let mut written = 0;
    for (target, input) in dan_fuzz::seeds::seeds() {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(blake3::hash(&input).to_hex().as_str());
        if !path.exists() {
            std::fs::write(path, &input)?;
            written += 1;
        }
    }
    println!("wrote {written} new seed inputs under {}", root.display());
    Ok(())
}
