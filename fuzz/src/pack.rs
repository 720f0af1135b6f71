//! Packing of fuzzed `.keras` members into an archive; `tests/fuzz_corpus.rs` includes this
//! file too, to replay the `keras_members` corpus exactly as the target ran it.

/// A `.keras` archive (stored zip) holding `config` as `config.json` and `weights` as
/// `model.weights.h5`, with correct CRCs: the `keras_members` target fuzzes the two members
/// themselves, which a mutation of a whole archive rarely reaches (it fails the CRC check).
pub fn keras_archive(config: &[u8], weights: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    let members: [(&str, &[u8]); 2] = [("config.json", config), ("model.weights.h5", weights)];
    for (name, data) in members {
        let mut crc = crc32(data).to_le_bytes().to_vec();
        let size = (data.len() as u32).to_le_bytes();
        crc.extend(size);
        crc.extend(size);
        let fixed = |buf: &mut Vec<u8>| {
            buf.extend([20, 0, 0, 0, 0, 0, 0, 0, 0x21, 0]);
            buf.extend(&crc);
            buf.extend((name.len() as u16).to_le_bytes());
            buf.extend([0, 0]);
        };
        let offset = (out.len() as u32).to_le_bytes();
        out.extend(0x0403_4b50u32.to_le_bytes());
        fixed(&mut out);
        out.extend(name.as_bytes());
        out.extend(data);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend([20, 0]);
        fixed(&mut central);
        central.extend([0; 10]);
        central.extend(offset);
        central.extend(name.as_bytes());
    }
    let start = (out.len() as u32).to_le_bytes();
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0, 0, 0, 0, 2, 0, 2, 0]);
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(start);
    out.extend([0, 0]);
    out
}

/// The CRC-32 (IEEE) of `data`, as zip stores it.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}
