"""Build a tiny, randomly initialised Qwen3-TTS 12Hz Base model folder (a few MB) at test time.

No Qwen3-TTS weights are reachable here, so the clone tests (and scripts/bench_clone.py, which is
why it lives in scripts/: product code never imports tests/) run the real qwen-tts code on a
model with the real architecture and file layout but random weights: every code path runs
(text tokenizer, speech tokenizer encode/decode, speaker encoder, talker, code predictor),
only the sound is noise. Nothing built here is ever committed.

Constraints the architecture imposes (checked against qwen-tts 0.1.1):
- `<|im_start|>assistant\\n` must be exactly 3 text tokens (the model slices input_ids[:, :3]);
- the talker's codec vocabulary is the codebook size + 1024 special ids (the top 1024 are
  suppressed during generation except EOS);
- the speaker encoder's output (enc_dim) is added to talker embeddings: enc_dim = talker hidden;
- the talker's mrope_section sums to head_dim / 2;
- the speaker encoder config accepts only its own keys (no model_type);
- the folder needs generation_config.json and speech_tokenizer/preprocessor_config.json.
"""
from __future__ import annotations

import json
from pathlib import Path

CODEBOOK = 64  # entries per codebook
QUANTIZERS = 4  # code groups per 80 ms frame (the real model has 16)
HIDDEN = 32
HEADS = 2
HEAD_DIM = 16
LANGUAGES = {"english": 1100, "french": 1101, "chinese": 1102}
SPECIAL_TEXT = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|tts_pad|>", "<|tts_bos|>", "<|tts_eos|>"]
TRAINING_TEXT = [
    "assistant", "assistant\n", "user\n", "the quick brown fox jumps over the lazy dog",
    "hello this is a test of the voice", "bonjour ceci est un essai de la voix",
]


def _text_tokenizer(folder: Path) -> dict[str, int]:
    """A byte-level BPE tokenizer in which `assistant` is one token; returns the special ids."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=SPECIAL_TEXT,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(TRAINING_TEXT * 50, trainer)
    fast = Qwen2TokenizerFast(tokenizer_object=tok, unk_token=None, bos_token=None,
                              eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    fast.save_pretrained(folder)
    ids = {t: fast.convert_tokens_to_ids(t) for t in SPECIAL_TEXT}
    ids["vocab"] = len(fast)
    prefix = fast("<|im_start|>assistant\n")["input_ids"]
    if len(prefix) != 3:
        raise RuntimeError(f"tiny tokenizer: '<|im_start|>assistant\\n' is {len(prefix)} tokens, must be 3")
    return ids


def _speech_tokenizer(folder: Path) -> None:
    import torch
    from transformers import EncodecFeatureExtractor

    from qwen_tts.core import Qwen3TTSTokenizerV2Config, Qwen3TTSTokenizerV2Model

    folder.mkdir(parents=True, exist_ok=True)
    encoder = dict(
        sampling_rate=24000, frame_rate=12.5, hidden_size=HIDDEN, num_filters=4, num_residual_layers=1,
        upsampling_ratios=[8, 6, 5, 4], codebook_size=CODEBOOK, codebook_dim=16, num_quantizers=QUANTIZERS,
        vector_quantization_hidden_dimension=16, num_semantic_quantizers=1, upsample_groups=HIDDEN,
        num_hidden_layers=1, intermediate_size=64, num_attention_heads=HEADS, num_key_value_heads=HEADS,
        head_dim=HEAD_DIM, sliding_window=16,
    )
    decoder = dict(
        codebook_size=CODEBOOK, codebook_dim=16, hidden_size=HIDDEN, latent_dim=HIDDEN, num_attention_heads=HEADS,
        num_key_value_heads=HEADS, head_dim=HEAD_DIM, intermediate_size=64, num_hidden_layers=1,
        num_quantizers=QUANTIZERS, upsample_rates=[8, 5, 4, 3], upsampling_ratios=[2, 2], decoder_dim=32,
        sliding_window=16,
    )
    config = Qwen3TTSTokenizerV2Config(encoder_config=encoder, decoder_config=decoder,
                                       encoder_valid_num_quantizers=QUANTIZERS)
    model = Qwen3TTSTokenizerV2Model(config)
    # Transformers' init (std 0.02, zero codebooks) decodes to ~1e-8: silence the chain would reject.
    # PyTorch's own fan-in init keeps the random signal audible.
    for module in model.decoder.modules():
        if isinstance(module, (torch.nn.Conv1d, torch.nn.ConvTranspose1d, torch.nn.Linear)):
            module.reset_parameters()
    for name, param in model.named_parameters():
        if name.endswith("embedding_sum"):
            param.data.normal_()
    model.save_pretrained(folder)
    EncodecFeatureExtractor(feature_size=1, sampling_rate=24000, padding_value=0.0).save_pretrained(folder)


def build_tiny_base_model(folder: Path, seed: int = 0) -> Path:
    """Write a complete Qwen3-TTS Base model folder (config, weights, tokenizers) into `folder`."""
    import torch

    from qwen_tts.core.models import Qwen3TTSConfig, Qwen3TTSForConditionalGeneration, Qwen3TTSProcessor

    torch.manual_seed(seed)
    folder.mkdir(parents=True, exist_ok=True)
    ids = _text_tokenizer(folder)
    vocab = CODEBOOK + 1024
    talker = dict(
        vocab_size=vocab, hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=1,
        num_attention_heads=HEADS, num_key_value_heads=1, head_dim=HEAD_DIM, max_position_embeddings=4096,
        rope_scaling={"rope_type": "default", "mrope_section": [4, 2, 2], "interleaved": True},
        num_code_groups=QUANTIZERS, text_hidden_size=HIDDEN, text_vocab_size=ids["vocab"],
        codec_eos_token_id=CODEBOOK + 2, codec_think_id=CODEBOOK + 6, codec_nothink_id=CODEBOOK + 7,
        codec_think_bos_id=CODEBOOK + 8, codec_think_eos_id=CODEBOOK + 9, codec_pad_id=CODEBOOK,
        codec_bos_id=CODEBOOK + 1, spk_id={}, spk_is_dialect={},
        codec_language_id={name: CODEBOOK + 20 + i for i, name in enumerate(LANGUAGES)},
        code_predictor_config=dict(
            vocab_size=CODEBOOK, hidden_size=HIDDEN, intermediate_size=64, num_hidden_layers=1,
            num_attention_heads=HEADS, num_key_value_heads=1, head_dim=HEAD_DIM, num_code_groups=QUANTIZERS,
            max_position_embeddings=64, layer_types=["full_attention"],
        ),
    )
    speaker = dict(mel_dim=128, enc_dim=HIDDEN, enc_channels=[16, 16, 16, 16, 48], enc_kernel_sizes=[5, 3, 3, 3, 1],
                   enc_dilations=[1, 2, 3, 4, 1], enc_attention_channels=8, enc_res2net_scale=4, enc_se_channels=8,
                   sample_rate=24000)
    config = Qwen3TTSConfig(
        talker_config=talker, speaker_encoder_config=speaker, tokenizer_type="qwen3_tts_tokenizer_12hz",
        tts_model_size="0b6", tts_model_type="base", im_start_token_id=ids["<|im_start|>"],
        im_end_token_id=ids["<|im_end|>"], tts_pad_token_id=ids["<|tts_pad|>"],
        tts_bos_token_id=ids["<|tts_bos|>"], tts_eos_token_id=ids["<|tts_eos|>"],
    )
    Qwen3TTSForConditionalGeneration(config).save_pretrained(folder)
    saved = json.loads((folder / "config.json").read_text())
    saved["speaker_encoder_config"] = speaker  # to_dict() adds keys its __init__ refuses
    (folder / "config.json").write_text(json.dumps(saved, indent=1))
    from transformers import AutoTokenizer

    Qwen3TTSProcessor(tokenizer=AutoTokenizer.from_pretrained(folder)).save_pretrained(folder)
    (folder / "generation_config.json").write_text(json.dumps(
        {"do_sample": True, "top_k": 50, "top_p": 1.0, "temperature": 0.9, "repetition_penalty": 1.05,
         "subtalker_dosample": True, "subtalker_top_k": 50, "subtalker_top_p": 1.0,
         "subtalker_temperature": 0.9, "max_new_tokens": 2048}))
    _speech_tokenizer(folder / "speech_tokenizer")
    return folder
