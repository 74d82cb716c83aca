//! Text written as a JSON string, as serde_json writes it, for every string the gateway and
//! the enricher add to an event: most text needs no escape, so it is checked in one pass and
//! copied whole, where serde_json looks every byte up in its escape table.

/// Appends `text` to `out` as a JSON string, byte for byte what `serde_json::to_writer` writes.
pub fn write_json_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    // A fold without an early exit compiles to a vector loop. serde_json escapes only these.
    let plain = bytes.iter().fold(true, |plain, &byte| plain & (byte >= 0x20) & (byte != b'"') & (byte != b'\\'));
    if plain {
        out.reserve(bytes.len() + 2);
        out.push(b'"');
        out.extend_from_slice(bytes);
        out.push(b'"');
    } else {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, text);
    }
}

#[cfg(test)]
mod tests {
    use super::write_json_str;
    use proptest::prelude::*;

    fn written(text: &str) -> Vec<u8> {
        let mut out = b"prefix".to_vec();
        write_json_str(&mut out, text);
        out
    }

    #[test]
    fn escapes_what_serde_json_escapes() {
        for text in ["", "plain", "quote \" here", "back\\slash", "tab\tand\nnewline", "\u{1}", "\u{7f} é 😀 /"] {
            let mut expected = b"prefix".to_vec();
            expected.extend_from_slice(&serde_json::to_vec(text).expect("json"));
            assert_eq!(written(text), expected, "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn writes_what_serde_json_writes(text in "(\\PC|[\"\\\\\u{0}-\u{1f}\u{7f}])*") {
            let mut expected = b"prefix".to_vec();
            expected.extend_from_slice(&serde_json::to_vec(&text).expect("json"));
            prop_assert_eq!(written(&text), expected);
        }
    }
}
