use super::*;

/// A minimal valid GGUF: one metadata string, one 32-element F32 tensor.
fn tiny() -> Vec<u8> {
    let mut f = b"GGUF".to_vec();
    f.extend(3u32.to_le_bytes());
    f.extend(1u64.to_le_bytes()); // tensors
    f.extend(1u64.to_le_bytes()); // metadata
    let key = b"general.architecture";
    f.extend((key.len() as u64).to_le_bytes());
    f.extend(key);
    f.extend(8u32.to_le_bytes());
    f.extend(5u64.to_le_bytes());
    f.extend(b"llama");
    let name = b"w";
    f.extend((name.len() as u64).to_le_bytes());
    f.extend(name);
    f.extend(1u32.to_le_bytes());
    f.extend(32u64.to_le_bytes());
    f.extend(0u32.to_le_bytes()); // F32
    f.extend(0u64.to_le_bytes());
    while !f.len().is_multiple_of(32) {
        f.push(0);
    }
    f.extend([0u8; 128]);
    f
}

#[test]
fn a_tiny_file_validates() {
    let f = tiny();
    let s = validate(&f[..], f.len() as u64).expect("valid");
    assert_eq!(
        (s.tensor_count, s.metadata_count, s.data_bytes),
        (1, 1, 128)
    );
    assert_eq!(s.architecture.as_deref(), Some("llama"));
}

#[test]
fn every_truncation_of_a_tiny_file_is_an_error_with_an_offset() {
    let f = tiny();
    for cut in 0..f.len() - 1 {
        let err = validate(&f[..cut], cut as u64).expect_err("truncated");
        assert!(err.offset <= cut as u64, "cut {cut}: {err:?}");
    }
}

#[test]
fn known_defects_are_named() {
    let mut f = tiny();
    f[0] = b'X';
    assert!(
        validate(&f[..], f.len() as u64)
            .expect_err("magic")
            .problem
            .contains("not a GGUF")
    );
    let mut f = tiny();
    f[4] = 9;
    assert_eq!(
        validate(&f[..], f.len() as u64)
            .expect_err("version")
            .offset,
        4
    );
    // Header 24 + key 28 + value type 4 + value 13 + name 9 + rank 4 + dim 8 = type at 90.
    let mut f = tiny();
    f[90] = 77;
    let err = validate(&f[..], f.len() as u64).expect_err("type");
    assert_eq!(err.offset, 90, "{err:?}");
    assert!(err.problem.contains("unknown ggml type 77"), "{err:?}");
    // Tensor data cut short.
    let f = tiny();
    let err = validate(&f[..f.len() - 1], f.len() as u64 - 1).expect_err("short data");
    assert!(err.problem.contains("runs past the end"), "{err:?}");
    // A first tensor whose data does not start the data section.
    let mut f = tiny();
    f[94] = 0x40;
    let err = validate(&f[..], f.len() as u64).expect_err("offset");
    assert!(
        err.problem
            .contains("data offset is 64, but the tensors before it end at 0"),
        "{err:?}"
    );
}

/// A GGUF v3 file built field by field, for tests that need one exact defect.
#[derive(Default)]
struct Builder {
    kv_count: u64,
    kvs: Vec<u8>,
    tensor_count: u64,
    tensors: Vec<u8>,
}

fn gguf_string(s: &[u8]) -> Vec<u8> {
    let mut v = (s.len() as u64).to_le_bytes().to_vec();
    v.extend(s);
    v
}

impl Builder {
    fn kv(mut self, key: &str, ty: u32, value: &[u8]) -> Self {
        self.kvs.extend(gguf_string(key.as_bytes()));
        self.kvs.extend(ty.to_le_bytes());
        self.kvs.extend(value);
        self.kv_count += 1;
        self
    }

    fn tensor(mut self, name: &str, dims: &[u64], ty: u32, offset: u64) -> Self {
        self.tensors.extend(gguf_string(name.as_bytes()));
        self.tensors.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.tensors.extend(d.to_le_bytes());
        }
        self.tensors.extend(ty.to_le_bytes());
        self.tensors.extend(offset.to_le_bytes());
        self.tensor_count += 1;
        self
    }

    /// Header and tables, unpadded: the file ends right after the last table entry.
    fn header(&self) -> Vec<u8> {
        let mut f = b"GGUF".to_vec();
        f.extend(3u32.to_le_bytes());
        f.extend(self.tensor_count.to_le_bytes());
        f.extend(self.kv_count.to_le_bytes());
        f.extend(&self.kvs);
        f.extend(&self.tensors);
        f
    }

    /// The header padded to `alignment`, then `data` bytes of tensor data.
    fn file(&self, alignment: usize, data: usize) -> Vec<u8> {
        let mut f = self.header();
        while !f.len().is_multiple_of(alignment) {
            f.push(0);
        }
        f.extend(vec![0u8; data]);
        f
    }
}

/// `tensors` as f32, laid out one after another at 32-byte alignment, then the file.
fn laid_out(mut b: Builder, tensors: &[(&str, &[u64])]) -> Vec<u8> {
    let mut offset = 0;
    for (name, dims) in tensors {
        b = b.tensor(name, dims, 0, offset);
        offset += (dims.iter().product::<u64>() * 4).div_ceil(32) * 32;
    }
    b.file(32, offset as usize)
}

fn check(f: &[u8]) -> Result<Summary, Defect> {
    validate(f, f.len() as u64)
}

fn arch() -> Builder {
    Builder::default().kv("general.architecture", 8, &gguf_string(b"llama"))
}

#[test]
fn type_layouts_are_ggml_s() {
    // (type, elements per block, bytes per block) from ggml's type traits.
    let table: [(u32, u64, u64); 32] = [
        (0, 1, 4),
        (1, 1, 2),
        (2, 32, 18),
        (3, 32, 20),
        (6, 32, 22),
        (7, 32, 24),
        (8, 32, 34),
        (9, 32, 36),
        (10, 256, 84),
        (11, 256, 110),
        (12, 256, 144),
        (13, 256, 176),
        (14, 256, 210),
        (15, 256, 292),
        (16, 256, 66),
        (17, 256, 74),
        (18, 256, 98),
        (19, 256, 50),
        (20, 32, 18),
        (21, 256, 110),
        (22, 256, 82),
        (23, 256, 136),
        (24, 1, 1),
        (25, 1, 2),
        (26, 1, 4),
        (27, 1, 8),
        (28, 1, 8),
        (29, 256, 56),
        (30, 1, 2),
        (34, 256, 54),
        (35, 256, 66),
        (39, 32, 17),
    ];
    for (ty, block, bytes) in table {
        assert_eq!(type_layout(ty), Some((block, bytes)), "ggml type {ty}");
    }
    // Removed or never assigned in ggml: 4, 5 (Q4_2, Q4_3), 31–33, 36–38.
    for ty in [4, 5, 31, 32, 33, 36, 37, 38, 40, 1000] {
        assert_eq!(type_layout(ty), None, "ggml type {ty}");
    }
}

#[test]
fn a_file_may_end_exactly_where_its_last_field_ends() {
    // The last read (a string value; a skipped string in an array) ends at the last byte.
    let s = check(&arch().header()).expect("valid");
    assert_eq!(s.architecture.as_deref(), Some("llama"));
    let mut tokens = 8u32.to_le_bytes().to_vec();
    tokens.extend(2u64.to_le_bytes());
    tokens.extend(gguf_string(b"a"));
    tokens.extend(gguf_string(b"bc"));
    assert!(check(&arch().kv("tokenizer.ggml.tokens", 9, &tokens).header()).is_ok());
}

#[test]
fn every_scalar_type_is_read_at_its_size() {
    // A wrong size for any type would misread every field after it.
    let mut b = Builder::default();
    for (ty, size) in [
        (0u32, 1usize),
        (1, 1),
        (2, 2),
        (3, 2),
        (4, 4),
        (5, 4),
        (6, 4),
        (7, 1),
        (10, 8),
        (11, 8),
        (12, 8),
    ] {
        b = b.kv(&format!("x.type{ty}"), ty, &vec![0x11; size]);
    }
    let b = b.kv("general.architecture", 8, &gguf_string(b"qwen2"));
    let s = check(&b.header()).expect("valid");
    assert_eq!(
        (s.metadata_count, s.architecture.as_deref()),
        (12, Some("qwen2"))
    );
}

#[test]
fn strings_inside_arrays_are_skipped_not_decoded() {
    let mut tokens = 8u32.to_le_bytes().to_vec();
    tokens.extend(1u64.to_le_bytes());
    tokens.extend(gguf_string(&[0xff, 0xfe]));
    assert!(check(&arch().kv("x.strings", 9, &tokens).header()).is_ok());
    // A top-level string value is decoded, and must be UTF-8.
    let bad = Builder::default().kv("general.name", 8, &gguf_string(&[0xff, 0xfe]));
    let e = check(&bad.header()).expect_err("not UTF-8");
    assert!(e.problem.contains("not UTF-8"), "{e:?}");
}

#[test]
fn an_array_count_is_checked_against_the_bytes_left() {
    // n empty strings take exactly 8n bytes: n fits when exactly 8n bytes are left.
    let array = |n: u64, present: u64| {
        let mut v = 8u32.to_le_bytes().to_vec();
        v.extend(n.to_le_bytes());
        for _ in 0..present {
            v.extend(0u64.to_le_bytes());
        }
        arch().kv("x.strings", 9, &v).header()
    };
    assert!(check(&array(5, 5)).is_ok());
    let e = check(&array(6, 5)).expect_err("one too many");
    assert!(e.problem.contains("does not fit in the file"), "{e:?}");
    let e = check(&array(u64::MAX / 2, 5)).expect_err("huge");
    assert!(e.problem.contains("does not fit in the file"), "{e:?}");
}

#[test]
fn arrays_nest_two_deep_at_most_and_unknown_element_types_are_located() {
    let nested = |levels: usize| {
        // `levels` arrays, each holding one array, the innermost holding no u32.
        let mut v = Vec::new();
        for _ in 1..levels {
            v.extend(9u32.to_le_bytes());
            v.extend(1u64.to_le_bytes());
        }
        v.extend(4u32.to_le_bytes());
        v.extend(0u64.to_le_bytes());
        arch().kv("x.nested", 9, &v).header()
    };
    assert!(check(&nested(2)).is_ok());
    let e = check(&nested(3)).expect_err("three deep");
    assert!(e.problem.contains("nested deeper than 2"), "{e:?}");
    // The error points at the element type's 4 bytes.
    let mut v = 99u32.to_le_bytes().to_vec();
    v.extend(1u64.to_le_bytes());
    let f = Builder::default().kv("x.odd", 9, &v).header();
    let e = check(&f).expect_err("unknown element type");
    let elem_at = 24 + 8 + "x.odd".len() as u64 + 4;
    assert_eq!(e.offset, elem_at, "{e:?}");
}

#[test]
fn counts_are_checked_against_the_file_size_at_their_exact_bound() {
    let f = arch().header();
    let len = f.len() as u64;
    let with_counts = |tensors: u64, kvs: u64| {
        let mut g = f.clone();
        g[8..16].copy_from_slice(&tensors.to_le_bytes());
        g[16..24].copy_from_slice(&kvs.to_le_bytes());
        g
    };
    let cannot_fit = |g: &[u8]| {
        check(g)
            .err()
            .is_some_and(|e| e.problem.contains("cannot fit"))
    };
    // One past each bound is refused as impossible; the bound itself is read and fails on
    // what is actually there (the file ends), not on the count.
    assert!(cannot_fit(&with_counts(len / 32 + 1, 1)));
    assert!(!cannot_fit(&with_counts(len / 32, 1)));
    assert!(cannot_fit(&with_counts(0, len / 13 + 1)));
    assert!(!cannot_fit(&with_counts(0, len / 13)));
}

#[test]
fn general_alignment_must_be_a_power_of_two_and_is_obeyed() {
    let aligned = |a: u32, offset: u64| {
        arch()
            .kv("general.alignment", 4, &a.to_le_bytes())
            .tensor("w", &[32], 0, offset)
            .file(64, 256)
    };
    let s = check(&aligned(64, 0)).expect("valid");
    assert_eq!((s.alignment, s.data_offset % 64), (64, 0));
    let e = check(&aligned(64, 32)).expect_err("32 is not aligned to 64");
    assert!(e.problem.contains("not aligned to 64"), "{e:?}");
    for bad in [0, 48] {
        let e = check(&aligned(bad, 0)).expect_err("not a power of two");
        assert!(e.problem.contains("not a power of two"), "{bad}: {e:?}");
    }
}

#[test]
fn tensor_ranks_are_one_to_four() {
    let ranked = |dims: &[u64]| arch().tensor("w", dims, 0, 0).file(32, 128);
    assert!(check(&ranked(&[32, 1, 1, 1])).is_ok());
    for dims in [&[][..], &[32, 1, 1, 1, 1][..]] {
        let e = check(&ranked(dims)).expect_err("bad rank");
        assert!(e.problem.contains("rank"), "{dims:?}: {e:?}");
    }
}

fn u32v(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

#[test]
fn duplicate_keys_and_tensor_names_are_refused_as_llama_cpp_refuses_them() {
    let twice =
        arch()
            .kv("general.name", 8, &gguf_string(b"a"))
            .kv("general.name", 8, &gguf_string(b"b"));
    let e = check(&twice.header()).expect_err("duplicate key");
    assert!(
        e.problem
            .contains("duplicate metadata key `general.name` (entries #1 and #2"),
        "{e:?}"
    );
    let tensors = arch()
        .tensor("w", &[32], 0, 0)
        .tensor("w", &[32], 0, 128)
        .file(32, 256);
    let e = check(&tensors).expect_err("duplicate tensor");
    assert!(
        e.problem
            .contains("duplicate tensor name `w` (tensors #0 and #1"),
        "{e:?}"
    );
}

#[test]
fn names_are_bounded_before_they_are_read() {
    // ggml's GGML_MAX_NAME is 64 with the NUL: 63 bytes load, 64 do not.
    let name = |n: usize| arch().tensor(&"t".repeat(n), &[32], 0, 0).file(32, 128);
    assert!(check(&name(63)).is_ok());
    let e = check(&name(64)).expect_err("64-byte name");
    assert!(
        e.problem.contains("64 bytes long, more than the 63"),
        "{e:?}"
    );
    // A key claiming 4 GiB in a small file: refused from its length alone, at once.
    let mut f = b"GGUF".to_vec();
    f.extend(3u32.to_le_bytes());
    f.extend(0u64.to_le_bytes());
    f.extend(1u64.to_le_bytes());
    f.extend((1u64 << 32).to_le_bytes());
    f.extend(vec![b'k'; 64]);
    let e = check(&f).expect_err("huge key");
    assert!(e.problem.contains("more than the 65535 bytes"), "{e:?}");
    assert!(
        e.problem.len() < 200,
        "the message stays short: {}",
        e.problem
    );
}

#[test]
fn a_huge_string_value_is_checked_and_skipped_not_held() {
    let big = vec![b'x'; (MAX_KEPT_STRING_BYTES + 1) as usize];
    let f = arch()
        .kv("tokenizer.chat_template", 8, &gguf_string(&big))
        .header();
    let s = check(&f).expect("valid");
    assert_eq!(
        s.get("tokenizer.chat_template"),
        Some(&MetaValue::LongText {
            len: MAX_KEPT_STRING_BYTES + 1
        })
    );
    // One byte short: the skip is checked against the file like any read.
    let e = check(&f[..f.len() - 1]).expect_err("truncated");
    assert!(e.problem.contains("truncated"), "{e:?}");
}

#[test]
fn keys_llama_cpp_reads_with_typed_getters_must_have_their_type() {
    // general.alignment: gguf_get_val_u32 aborts on any other type.
    let e = check(
        &arch()
            .kv("general.alignment", 10, &64u64.to_le_bytes())
            .header(),
    )
    .expect_err("u64 alignment");
    assert!(
        e.problem
            .contains("`general.alignment` is u64, but llama.cpp reads it as u32"),
        "{e:?}"
    );
    assert!(check(&arch().kv("general.alignment", 4, &u32v(64)).header()).is_ok());
    // {arch}.context_length as a u64, or a string: llama_model_loader refuses the file.
    let e = check(
        &arch()
            .kv("llama.context_length", 10, &4096u64.to_le_bytes())
            .header(),
    )
    .expect_err("u64 context");
    assert!(e.problem.contains("`llama.context_length` is u64"), "{e:?}");
    assert!(check(&arch().kv("llama.context_length", 4, &u32v(4096)).header()).is_ok());
    // Per-layer keys may be arrays of integers; an array of strings is refused.
    let mut ints = 5u32.to_le_bytes().to_vec();
    ints.extend(2u64.to_le_bytes());
    ints.extend(u32v(8));
    ints.extend(u32v(8));
    assert!(check(&arch().kv("llama.attention.head_count", 9, &ints).header()).is_ok());
    let mut strings = 8u32.to_le_bytes().to_vec();
    strings.extend(1u64.to_le_bytes());
    strings.extend(gguf_string(b"8"));
    let e = check(
        &arch()
            .kv("llama.attention.head_count", 9, &strings)
            .header(),
    )
    .expect_err("strings");
    assert!(e.problem.contains("is an array of string"), "{e:?}");
    // A key of another architecture is not read by llama.cpp, whatever its type.
    assert!(
        check(
            &arch()
                .kv("qwen2.context_length", 10, &1u64.to_le_bytes())
                .header()
        )
        .is_ok()
    );
    // general.architecture itself must be a string.
    let e = check(
        &Builder::default()
            .kv("general.architecture", 4, &u32v(1))
            .header(),
    )
    .expect_err("number");
    assert!(e.problem.contains("`general.architecture` is u32"), "{e:?}");
}

#[test]
fn tensor_data_lies_in_table_order_each_padded_to_the_alignment() {
    // 32 f32 = 128 bytes, then 8 f32 = 32 bytes: offsets 0 and 128 are llama.cpp's layout.
    let ok = arch()
        .tensor("a", &[32], 0, 0)
        .tensor("b", &[8], 0, 128)
        .file(32, 160);
    assert!(check(&ok).is_ok());
    // The same data in the other order, or with a gap: refused, with the expected offset.
    let swapped = arch()
        .tensor("a", &[32], 0, 32)
        .tensor("b", &[8], 0, 0)
        .file(32, 160);
    let e = check(&swapped).expect_err("swapped");
    assert!(
        e.problem
            .contains("`a`'s data offset is 32, but the tensors before it end at 0"),
        "{e:?}"
    );
    let gap = arch()
        .tensor("a", &[32], 0, 0)
        .tensor("b", &[8], 0, 160)
        .file(32, 192);
    let e = check(&gap).expect_err("gap");
    assert!(e.problem.contains("end at 128"), "{e:?}");
    // Padding: a 40-byte tensor is followed at 64 with alignment 32.
    let padded = arch()
        .tensor("a", &[10], 0, 0)
        .tensor("b", &[8], 0, 64)
        .file(32, 96);
    assert!(check(&padded).is_ok());
}

#[test]
fn element_counts_stay_below_i64_max_as_ggml_counts_them() {
    // 2^63 elements overflow ggml's int64_t although they fit a u64.
    let e =
        check(&arch().tensor("a", &[1 << 31, 1 << 32], 0, 0).header()).expect_err("2^63 elements");
    assert!(e.problem.contains("dimensions overflow"), "{e:?}");
}

#[test]
fn any_header_is_judged_fast_whatever_it_claims() {
    // Claimed counts and lengths far beyond the file: each is refused where the claim is
    // made, from the claim and the file size alone (no loop over it, nothing allocated for
    // it): the error's offset is the claim's, a few bytes into the file.
    let claims: Vec<Vec<u8>> = vec![
        {
            let mut f = b"GGUF".to_vec();
            f.extend(3u32.to_le_bytes());
            f.extend(u64::MAX.to_le_bytes());
            f.extend(u64::MAX.to_le_bytes());
            f
        },
        {
            let mut v = 0u32.to_le_bytes().to_vec();
            v.extend(u64::MAX.to_le_bytes());
            arch().kv("x.bytes", 9, &v).header()
        },
        {
            let mut v = 8u32.to_le_bytes().to_vec();
            v.extend((1u64 << 40).to_le_bytes());
            arch().kv("tokenizer.ggml.tokens", 9, &v).header()
        },
        arch()
            .kv("general.name", 8, &(1u64 << 50).to_le_bytes())
            .header(),
    ];
    for f in claims {
        let e = check(&f).expect_err("an impossible claim");
        assert!(
            e.offset <= 16 || e.offset + 16 >= f.len() as u64,
            "{e:?} in {} bytes",
            f.len()
        );
        assert!(e.problem.len() < 200, "{}", e.problem);
    }
}

#[test]
fn a_vocabulary_with_a_repeated_token_is_refused_as_llama_cpp_aborts_on_it() {
    let tokens = |words: &[&[u8]]| {
        let mut v = 8u32.to_le_bytes().to_vec();
        v.extend((words.len() as u64).to_le_bytes());
        for w in words {
            v.extend(gguf_string(w));
        }
        arch().kv("tokenizer.ggml.tokens", 9, &v).header()
    };
    assert!(check(&tokens(&[b"a", b"b", b"ab"])).is_ok());
    let e = check(&tokens(&[b"a", b"b", b"a"])).expect_err("duplicate token");
    assert!(
        e.problem
            .contains("tokens 0 and 2 of `tokenizer.ggml.tokens` are the same"),
        "{e:?}"
    );
    // The scores must be f32 (llama.cpp asserts the element type).
    let mut scores = 5u32.to_le_bytes().to_vec();
    scores.extend(1u64.to_le_bytes());
    scores.extend(u32v(1));
    let e =
        check(&arch().kv("tokenizer.ggml.scores", 9, &scores).header()).expect_err("i32 scores");
    assert!(
        e.problem
            .contains("is an array of i32, but llama.cpp reads it as an array of f32"),
        "{e:?}"
    );
}

#[test]
fn a_model_needs_the_keys_llama_cpp_cannot_load_without() {
    let mut tokens = 8u32.to_le_bytes().to_vec();
    tokens.extend(2u64.to_le_bytes());
    tokens.extend(gguf_string(b"a"));
    tokens.extend(gguf_string(b"b"));
    let model = |skip: &str, scores: u64| {
        let mut b = Builder::default();
        for (key, ty, value) in [
            ("general.architecture", 8u32, gguf_string(b"llama")),
            ("llama.context_length", 4, u32v(4096)),
            ("llama.embedding_length", 4, u32v(32)),
            ("llama.block_count", 4, u32v(1)),
            ("llama.attention.head_count", 4, u32v(4)),
            (
                "llama.attention.layer_norm_rms_epsilon",
                6,
                1e-5f32.to_le_bytes().to_vec(),
            ),
            ("tokenizer.ggml.model", 8, gguf_string(b"gpt2")),
            ("tokenizer.ggml.tokens", 9, tokens.clone()),
        ] {
            if key != skip {
                b = b.kv(key, ty, &value);
            }
        }
        let mut s = 6u32.to_le_bytes().to_vec();
        s.extend(scores.to_le_bytes());
        for _ in 0..scores {
            s.extend(0f32.to_le_bytes());
        }
        laid_out(
            b.kv("tokenizer.ggml.scores", 9, &s),
            &[
                ("token_embd.weight", &[32, 2]),
                ("output_norm.weight", &[32]),
                ("blk.0.attn_q.weight", &[32, 32]),
            ],
        )
    };
    let whole = model("", 2);
    assert!(validate_model(&whole[..], whole.len() as u64).is_ok());
    for key in [
        "general.architecture",
        "llama.context_length",
        "llama.attention.layer_norm_rms_epsilon",
        "tokenizer.ggml.tokens",
    ] {
        let f = model(key, 2);
        // Well-formed, so the structural check passes; the model check does not.
        assert!(check(&f).is_ok(), "{key}");
        let e = validate_model(&f[..], f.len() as u64).expect_err(key);
        assert!(
            e.problem.contains(&format!("has no `{key}`")),
            "{key}: {e:?}"
        );
    }
    let f = model("", 3);
    let e = validate_model(&f[..], f.len() as u64).expect_err("3 scores for 2 tokens");
    assert!(
        e.problem
            .contains("`tokenizer.ggml.scores` has 3 entries for 2 tokens"),
        "{e:?}"
    );
}

#[test]
fn every_layer_of_a_uniform_architecture_has_the_same_tensors() {
    let model = |layers: u32, names: &[&str]| {
        let mut tokens = 8u32.to_le_bytes().to_vec();
        tokens.extend(1u64.to_le_bytes());
        tokens.extend(gguf_string(b"a"));
        let b = arch()
            .kv("llama.context_length", 4, &u32v(4096))
            .kv("llama.embedding_length", 4, &u32v(32))
            .kv("llama.block_count", 4, &u32v(layers))
            .kv("llama.attention.head_count", 4, &u32v(4))
            .kv(
                "llama.attention.layer_norm_rms_epsilon",
                6,
                &1e-5f32.to_le_bytes(),
            )
            .kv("tokenizer.ggml.model", 8, &gguf_string(b"gpt2"))
            .kv("tokenizer.ggml.tokens", 9, &tokens);
        let shaped: Vec<(&str, &[u64])> = names
            .iter()
            .map(|&name| {
                let dims: &[u64] = match name {
                    "token_embd.weight" => &[32, 1],
                    n if n.starts_with("blk.") => &[32, 32],
                    _ => &[32],
                };
                (name, dims)
            })
            .collect();
        laid_out(b, &shaped)
    };
    let judge = |f: Vec<u8>| validate_model(&f[..], f.len() as u64);
    let base = [
        "token_embd.weight",
        "output_norm.weight",
        "blk.0.attn_k.weight",
        "blk.1.attn_k.weight",
    ];
    assert!(judge(model(2, &base)).is_ok());
    // One layer's tensor renamed: llama.cpp finds it missing.
    let e = judge(model(
        2,
        &[
            "token_embd.weight",
            "output_norm.weight",
            "blk.0.attn_k.weight",
            "blk.1.attn_j.weight",
        ],
    ))
    .expect_err("renamed");
    assert!(
        e.problem.contains("layer 1 has no `blk.1.attn_k.weight`"),
        "{e:?}"
    );
    // A layer past block_count, an unknown global tensor, a missing embedding.
    let e = judge(model(1, &base)).expect_err("layer 1 of 1");
    assert!(e.problem.contains("names no layer of the 1"), "{e:?}");
    let e = judge(model(
        2,
        &["token_embd.weight", "output_norm.weight", "outpux.weight"],
    ))
    .expect_err("unknown");
    assert!(
        e.problem
            .contains("`outpux.weight` is none llama.cpp's `llama` uses"),
        "{e:?}"
    );
    let e = judge(model(2, &["output_norm.weight"])).expect_err("no embedding");
    assert!(e.problem.contains("no tensor `token_embd.weight`"), "{e:?}");
}

/// A one-layer `llama` of embedding 32, 4 heads (2 for keys and values), 1 token, with the
/// given extra metadata and tensors (name, shape) after the required ones.
fn tiny_llama(extra_kv: &[(&str, u32, Vec<u8>)], tensors: &[(&str, &[u64])]) -> Vec<u8> {
    let mut tokens = 8u32.to_le_bytes().to_vec();
    tokens.extend(1u64.to_le_bytes());
    tokens.extend(gguf_string(b"a"));
    let mut b = arch()
        .kv("llama.context_length", 4, &u32v(4096))
        .kv("llama.embedding_length", 4, &u32v(32))
        .kv("llama.block_count", 4, &u32v(1))
        .kv("llama.attention.head_count", 4, &u32v(4))
        .kv("llama.attention.head_count_kv", 4, &u32v(2))
        .kv("llama.feed_forward_length", 4, &u32v(64))
        .kv(
            "llama.attention.layer_norm_rms_epsilon",
            6,
            &1e-5f32.to_le_bytes(),
        )
        .kv("tokenizer.ggml.tokens", 9, &tokens);
    for (key, ty, value) in extra_kv {
        b = b.kv(key, *ty, value);
    }
    laid_out(b, tensors)
}

const TINY_LLAMA_TENSORS: [(&str, &[u64]); 9] = [
    ("token_embd.weight", &[32, 1]),
    ("output_norm.weight", &[32]),
    ("blk.0.attn_norm.weight", &[32]),
    ("blk.0.attn_q.weight", &[32, 32]),
    ("blk.0.attn_k.weight", &[32, 16]),
    ("blk.0.attn_v.weight", &[32, 16]),
    ("blk.0.attn_output.weight", &[32, 32]),
    ("blk.0.ffn_gate.weight", &[32, 64]),
    ("blk.0.ffn_down.weight", &[64, 32]),
];

fn text_kv(key: &str, value: &str) -> (&'static str, u32, Vec<u8>) {
    (key.to_owned().leak(), 8, gguf_string(value.as_bytes()))
}

#[test]
fn tensor_shapes_follow_the_hyperparameters_as_llama_cpp_creates_them() {
    let judge = |f: Vec<u8>| validate_model(&f[..], f.len() as u64);
    let gpt2 = [text_kv("tokenizer.ggml.model", "gpt2")];
    judge(tiny_llama(&gpt2, &TINY_LLAMA_TENSORS)).expect("consistent shapes");
    // Each tensor in turn one row short: llama.cpp's check_tensor_dims refuses every one.
    for (i, (name, dims)) in TINY_LLAMA_TENSORS.iter().enumerate() {
        let mut wrong: Vec<u64> = dims.to_vec();
        wrong[0] -= 1;
        let mut tensors = TINY_LLAMA_TENSORS.to_vec();
        tensors[i] = (name, &wrong);
        let e = judge(tiny_llama(&gpt2, &tensors)).expect_err(name);
        assert!(
            e.problem.contains(&format!("tensor `{name}` has shape"))
                && e.problem.contains(&format!("{dims:?}")),
            "{name}: {e:?}"
        );
    }
    // A trailing dimension of 1 is the same ggml shape; another rank is not.
    let mut tensors = TINY_LLAMA_TENSORS.to_vec();
    tensors[1] = ("output_norm.weight", &[32, 1]);
    judge(tiny_llama(&gpt2, &tensors)).expect("[32, 1] is [32]");
    tensors[1] = ("output_norm.weight", &[32, 2]);
    judge(tiny_llama(&gpt2, &tensors)).expect_err("[32, 2]");
    // A corrupted hyperparameter moves the expected shapes: the key length says 16 per head.
    let e = judge(tiny_llama(
        &[
            text_kv("tokenizer.ggml.model", "gpt2"),
            ("llama.attention.key_length", 4, u32v(16)),
        ],
        &TINY_LLAMA_TENSORS,
    ))
    .expect_err("key_length");
    assert!(
        e.problem
            .contains("tensor `blk.0.attn_q.weight` has shape [32, 32], but the hyperparameters make it [32, 64]"),
        "{e:?}"
    );
    // llama's rotary dimension must be the head size.
    let e = judge(tiny_llama(
        &[
            text_kv("tokenizer.ggml.model", "gpt2"),
            ("llama.rope.dimension_count", 4, u32v(6)),
        ],
        &TINY_LLAMA_TENSORS,
    ))
    .expect_err("n_rot");
    assert!(e.problem.contains("invalid n_rot"), "{e:?}");
}

#[test]
fn names_llama_cpp_does_not_know_are_refused_with_the_closest_one() {
    let judge = |f: Vec<u8>| validate_model(&f[..], f.len() as u64);
    let e = judge(tiny_llama(
        &[text_kv("tokenizer.ggml.model", "gtp2")],
        &TINY_LLAMA_TENSORS,
    ))
    .expect_err("tokenizer");
    assert!(
        e.problem.contains("tokenizer model `gtp2` is none of the")
            && e.problem.contains("did you mean `gpt2`?"),
        "{e:?}"
    );
    let e = judge(tiny_llama(
        &[
            text_kv("tokenizer.ggml.model", "gpt2"),
            text_kv("tokenizer.ggml.pre", "smolm"),
        ],
        &TINY_LLAMA_TENSORS,
    ))
    .expect_err("pre-tokenizer");
    assert!(
        e.problem.contains("pre-tokenizer `smolm`") && e.problem.contains("`smollm`"),
        "{e:?}"
    );
    // Known, empty (llama.cpp's `default`), or on a vocabulary that is not BPE: accepted.
    for (model, pre) in [("gpt2", "smollm"), ("gpt2", ""), ("llama", "anything")] {
        judge(tiny_llama(
            &[
                text_kv("tokenizer.ggml.model", model),
                text_kv("tokenizer.ggml.pre", pre),
            ],
            &TINY_LLAMA_TENSORS,
        ))
        .unwrap_or_else(|e| panic!("{model}/{pre}: {e:?}"));
    }
    // An architecture string one letter off.
    let mut tokens = 8u32.to_le_bytes().to_vec();
    tokens.extend(1u64.to_le_bytes());
    tokens.extend(gguf_string(b"a"));
    let f = Builder::default()
        .kv("general.architecture", 8, &gguf_string(b"qwen4"))
        .kv("qwen4.context_length", 4, &u32v(64))
        .file(32, 0);
    let e = judge(f).expect_err("architecture");
    assert!(
        e.problem.contains("architecture `qwen4` is none of the")
            && e.problem.contains("did you mean"),
        "{e:?}"
    );
}

#[test]
fn the_name_lists_are_as_the_validator_searches_them() {
    use crate::llama_names::{
        ARCHITECTURES, BPE_PRE_TOKENIZERS, BPE_TOKENIZER_MODELS, TOKENIZER_MODELS,
    };
    assert!(
        BPE_PRE_TOKENIZERS.is_sorted(),
        "binary search needs sorted pre-tokenizers"
    );
    assert!(
        BPE_TOKENIZER_MODELS
            .iter()
            .all(|m| TOKENIZER_MODELS.contains(m))
    );
    for arch in crate::shapes::SHAPED_ARCHS {
        assert!(ARCHITECTURES.contains(arch), "{arch}");
    }
}

/// The name lists are those of the llama.cpp the workspace links: read back out of the
/// `llama-cpp-sys-2` sources cargo extracted (found with `cargo metadata`), so upgrading
/// llama.cpp fails here until `llama_names` is copied again.
#[test]
fn the_name_lists_are_the_vendored_llama_cpp_s() {
    use crate::llama_names::{ARCHITECTURES, BPE_PRE_TOKENIZERS, TOKENIZER_MODELS};
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let manifest = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .find(|p| p["name"] == "llama-cpp-sys-2")
        .and_then(|p| p["manifest_path"].as_str())
        .expect("llama-cpp-sys-2 is a dependency of the workspace");
    let src = std::path::Path::new(manifest)
        .parent()
        .expect("crate dir")
        .join("llama.cpp/src");
    let read = |file: &str| {
        std::fs::read_to_string(src.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
    };
    // Every quoted name in the LLM_ARCH_NAMES table but the `(unknown)` placeholder.
    let arch = read("llama-arch.cpp");
    let table = &arch[arch.find("LLM_ARCH_NAMES = {").expect("LLM_ARCH_NAMES")..];
    let table = &table[..table.find("};").expect("table end")];
    let quoted = |text: &str| -> Vec<String> {
        text.split('"')
            .skip(1)
            .step_by(2)
            .map(str::to_owned)
            .collect()
    };
    let vendored: Vec<String> = quoted(table)
        .into_iter()
        .filter(|n| n != "(unknown)")
        .collect();
    assert_eq!(vendored, ARCHITECTURES, "llama_names::ARCHITECTURES");
    // The pre-tokenizers between the BPE branch's first check and its refusal.
    let vocab = read("llama-vocab.cpp");
    let start = vocab
        .find("if (tokenizer_pre.empty())")
        .expect("pre-tokenizer branch");
    let end = start
        + vocab[start..]
            .find("unknown pre-tokenizer type")
            .expect("refusal");
    let compared = |text: &str, variable: &str| -> Vec<String> {
        let mut names: Vec<String> = text
            .split(&format!("{variable} == \""))
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap_or_default().to_owned())
            .collect();
        names.sort();
        names.dedup();
        names
    };
    assert_eq!(
        compared(&vocab[start..end], "tokenizer_pre"),
        BPE_PRE_TOKENIZERS,
        "llama_names::BPE_PRE_TOKENIZERS"
    );
    // The tokenizer models between the first check and the refusal of any other.
    let start = vocab
        .find("if (tokenizer_model == \"no_vocab\"")
        .expect("tokenizer branch");
    let end = start + vocab[start..].find("unknown tokenizer:").expect("refusal");
    let mut known: Vec<&str> = TOKENIZER_MODELS.to_vec();
    known.sort_unstable();
    assert_eq!(
        compared(&vocab[start..end], "tokenizer_model"),
        known,
        "llama_names::TOKENIZER_MODELS"
    );
}
