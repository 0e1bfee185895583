use super::*;
use candle_core::quantized::gguf_file;
use edgebench_core::quant::Quant;
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

/// A small architecture whose rows are multiples of 256, so every quantization applies.
fn k_quant_sized(arch: &str) -> Architecture {
    Architecture {
        layers: 2,
        hidden: 256,
        ffn: 512,
        heads: 2,
        kv_heads: 2,
        vocab: 700,
        context: 512,
        ..real(arch)
    }
}

fn twin<'a>(a: &'a Architecture, quant: Quant, seed: u64, tok: &'a ByteBpe) -> Twin<'a> {
    Twin {
        arch: a,
        name: "t",
        quant,
        seed,
        tokenizer: tok,
    }
}

fn threads(n: usize) -> WriteOptions<'static> {
    WriteOptions {
        threads: Some(n),
        progress: None,
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
fn same_seed_same_bytes_for_any_thread_count_and_counts_match_projection() {
    let tok = build_tokenizer(255);
    let dir = tempfile::tempdir().expect("tempdir");
    for arch in ["qwen2", "phi3"] {
        let a = twin::scaled(&real(arch), 16, tok.vocab_size());
        assert_eq!(
            element_count(&a).expect("specs"),
            twin::parameter_count(&a),
            "{arch}"
        );
        let path = |i: u32| dir.path().join(format!("{arch}-{i}.gguf"));
        let w1 = write_twin(&path(1), &twin(&a, Quant::Q8_0, 7, &tok), &threads(1)).expect("write");
        let w2 = write_twin(&path(2), &twin(&a, Quant::Q8_0, 7, &tok), &threads(3)).expect("write");
        let w3 = write_twin(&path(3), &twin(&a, Quant::Q8_0, 8, &tok), &threads(2)).expect("write");
        let bytes = |i| std::fs::read(path(i)).expect("read");
        assert_eq!(bytes(1), bytes(2), "{arch}: same seed, 1 vs 3 threads");
        assert_ne!(
            bytes(1),
            bytes(3),
            "{arch}: another seed changes the weights"
        );
        assert_eq!(w1.sha256, edgebench_core::sha256_hex(&bytes(1)));
        assert_eq!(w1.sha256, w2.sha256);
        assert_ne!(w1.sha256, w3.sha256);
        assert_eq!(w1.bytes, bytes(1).len() as u64);
        assert_eq!(
            twin(&a, Quant::Q8_0, 7, &tok).file_size().expect("size"),
            w1.bytes,
            "{arch}: the size announced before writing is the size written"
        );
        // The metadata and tensor table round-trip through candle's reader.
        let mut f = std::fs::File::open(path(1)).expect("open");
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

#[test]
fn every_quantization_passes_the_validator_and_dequantizes_to_the_intended_spread() {
    let tok = build_tokenizer(255);
    let dir = tempfile::tempdir().expect("tempdir");
    for arch in ["qwen2", "phi3"] {
        let a = k_quant_sized(arch);
        for &quant in TWIN_QUANTS.iter().chain(K_QUANTS) {
            let path = dir.path().join(format!("{arch}-{quant}.gguf"));
            write_twin(&path, &twin(&a, quant, 3, &tok), &threads(2)).expect("write");
            let summary = edgebench_gguf::validate_file(&path)
                .unwrap_or_else(|e| panic!("{arch} {quant}: {e}"));
            assert_eq!(
                summary.tensor_count as usize,
                specs(&a).expect("specs").len()
            );
            // The vocabulary is padded to the architecture's width.
            let mut f = std::fs::File::open(&path).expect("open");
            let content = gguf_file::Content::read(&mut f).expect("candle reads it");
            let tokens = content.metadata["tokenizer.ggml.tokens"]
                .to_vec()
                .expect("vec")
                .len();
            assert_eq!(tokens, 700, "{arch} {quant}");
            // Dequantized, a projection has the spread 1/√fan_in the recipe intends, and so has
            // the embedding (1/√hidden) and a Q6_K `ffn_down` of layer 0 (Q4_K_M), scaled by
            // 1/√(2·layers): Q4_0/Q8_0/F16 quantized by candle, k-quants generated directly.
            let name = if arch == "phi3" {
                "blk.0.attn_qkv.weight"
            } else {
                "blk.0.attn_q.weight"
            };
            for (tensor, want) in [
                (name, 1.0 / 16.0),
                ("token_embd.weight", 1.0 / 16.0),
                ("blk.0.ffn_down.weight", 1.0 / (512f32.sqrt() * 2.0)),
            ] {
                let t = content
                    .tensor(&mut f, tensor, &candle_core::Device::Cpu)
                    .expect("tensor")
                    .dequantize(&candle_core::Device::Cpu)
                    .expect("dequantize");
                let v: Vec<f32> = t.flatten_all().expect("flat").to_vec1().expect("vec");
                let rms = (v.iter().map(|x| x * x).sum::<f32>() / v.len() as f32).sqrt();
                let mean = v.iter().sum::<f32>() / v.len() as f32;
                assert!(
                    (rms / want - 1.0).abs() < 0.1,
                    "{arch} {quant} {tensor}: rms {rms} vs {want}"
                );
                assert!(
                    mean.abs() < 0.05 * want,
                    "{arch} {quant} {tensor}: mean {mean}"
                );
                assert!(v.iter().all(|x| x.is_finite()));
            }
        }
    }
}

#[test]
fn k_quants_refuse_rows_that_are_not_whole_blocks() {
    let tok = build_tokenizer(255);
    let a = twin::scaled(&real("qwen2"), 16, tok.vocab_size());
    let err = twin(&a, Quant::Q4KM, 1, &tok)
        .file_size()
        .expect_err("128-wide rows");
    let msg = err.to_string();
    assert!(
        msg.contains("token_embd.weight") && msg.contains(&format!("{} wide", a.hidden)),
        "{msg}"
    );
    let err = twin(&a, Quant::Q5_1, 1, &tok)
        .file_size()
        .expect_err("unknown quant");
    assert!(err.to_string().contains("Q5_1"), "{err}");
}

#[test]
fn ensure_reuses_a_matching_file_and_rewrites_a_changed_one() {
    let tok = build_tokenizer(255);
    let dir = tempfile::tempdir().expect("tempdir");
    let a = twin::scaled(&real("phi3"), 16, tok.vocab_size());
    let path = dir.path().join("p.gguf");
    let t = twin(&a, Quant::Q4_0, 5, &tok);
    let first = ensure_twin(&path, &t, &threads(2)).expect("write");
    assert!(!first.reused);
    let again = ensure_twin(&path, &t, &threads(2)).expect("reuse");
    assert!(again.reused);
    assert_eq!(again.sha256, first.sha256);
    // One flipped byte in the data: same size, other hash → written again.
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 40;
    bytes[last] ^= 0x55;
    std::fs::write(&path, &bytes).expect("corrupt");
    let fixed = ensure_twin(&path, &t, &threads(2)).expect("rewrite");
    assert!(!fixed.reused);
    assert_eq!(fixed.sha256, first.sha256);
    // Another seed is another recipe: never reused.
    let other = ensure_twin(&path, &twin(&a, Quant::Q4_0, 6, &tok), &threads(2)).expect("write");
    assert!(!other.reused);
    assert_ne!(other.sha256, first.sha256);
}

#[test]
fn progress_reaches_the_file_size() {
    let tok = build_tokenizer(255);
    let dir = tempfile::tempdir().expect("tempdir");
    let a = twin::scaled(&real("qwen2"), 16, tok.vocab_size());
    let last = std::sync::Mutex::new((0u64, 0u64));
    let report = |done: u64, total: u64| {
        let mut l = last.lock().expect("lock");
        assert!(done >= l.0, "progress never goes back");
        *l = (done, total);
    };
    let opts = WriteOptions {
        threads: Some(2),
        progress: Some(&report),
    };
    let w = write_twin(
        &dir.path().join("q.gguf"),
        &twin(&a, Quant::F16, 1, &tok),
        &opts,
    )
    .expect("write");
    let (done, total) = *last.lock().expect("lock");
    assert_eq!((done, total), (w.bytes, w.bytes));
}
