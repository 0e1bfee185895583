use super::*;
use edgebench_core::twin;

fn real(arch: &str) -> Architecture {
    Architecture {
        gguf_arch: arch.into(),
        layers: 32,
        hidden: 3072,
        ffn: 8192,
        heads: 24,
        kv_heads: 8,
        head_dim: 128,
        vocab: 200_064,
        context: 131_072,
        rope_theta: 10_000.0,
        qkv_bias: arch == "qwen2",
        tied_embeddings: arch == "phi3",
        partial_rotary: if arch == "phi3" { 0.75 } else { 1.0 },
        sliding_window: None,
        params: None,
    }
}

#[test]
fn tokenizer_is_deterministic_and_sized() {
    let a = build_tokenizer(255);
    assert_eq!(a, build_tokenizer(255));
    assert_eq!(a.vocab_size(), 512);
    assert_eq!(a.merges.len(), 255);
}

#[test]
fn same_seed_same_bytes_and_counts_match_projection() {
    let tok = build_tokenizer(255);
    let dir = tempfile::tempdir().expect("tempdir");
    for arch in ["qwen2", "phi3"] {
        let a = twin::scaled(&real(arch), 16, tok.vocab_size());
        assert_eq!(
            element_count(&a).expect("specs"),
            twin::parameter_count(&a),
            "{arch}"
        );
        let p1 = dir.path().join(format!("{arch}-1.gguf"));
        let p2 = dir.path().join(format!("{arch}-2.gguf"));
        let p3 = dir.path().join(format!("{arch}-3.gguf"));
        write_twin(&p1, &a, "t", "Q8_0", 7, &tok).expect("write");
        write_twin(&p2, &a, "t", "Q8_0", 7, &tok).expect("write");
        write_twin(&p3, &a, "t", "Q8_0", 8, &tok).expect("write");
        let (b1, b2, b3) = (
            std::fs::read(&p1).expect("r"),
            std::fs::read(&p2).expect("r"),
            std::fs::read(&p3).expect("r"),
        );
        assert_eq!(
            edgebench_core::sha256_hex(&b1),
            edgebench_core::sha256_hex(&b2),
            "{arch}: same seed"
        );
        assert_ne!(b1, b3, "{arch}: another seed changes the weights");
        // The metadata round-trips through candle's reader.
        let mut f = std::fs::File::open(&p1).expect("open");
        let content = gguf_file::Content::read(&mut f).expect("candle reads it");
        let get = |k: &str| {
            content
                .metadata
                .get(k)
                .unwrap_or_else(|| panic!("{arch}: missing {k}"))
        };
        assert_eq!(get("general.architecture").to_string().expect("str"), arch);
        assert_eq!(
            get(&format!("{arch}.block_count")).to_u32().expect("u32"),
            a.layers
        );
        assert_eq!(
            get(&format!("{arch}.attention.head_count_kv"))
                .to_u32()
                .expect("u32"),
            a.kv_heads
        );
        assert_eq!(
            get("tokenizer.ggml.tokens").to_vec().expect("vec").len(),
            512
        );
        let n: u64 = content
            .tensor_infos
            .values()
            .map(|t| t.shape.elem_count() as u64)
            .sum();
        assert_eq!(
            n,
            twin::parameter_count(&a),
            "{arch}: tensors hold the projected parameter count"
        );
    }
}
