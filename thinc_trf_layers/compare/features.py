"""Running the transformer once over every text: the frozen features of a compare run.

``load_transformer`` loads a local Hugging Face folder (anything unusable is an
``InputError``); ``extract_features`` runs it without gradients, every hidden layer kept,
and keeps one ``TransformerOutput`` per text (``TransformerOutput.from_hf``): the text's
real wordpieces only, as one span. torch and transformers are imported when called.
"""
import pathlib
import shutil
import sys
from typing import Any, List, NamedTuple, Optional, Sequence

from thinc.api import NumpyOps

from thinc_trf_layers import TransformerOutput

from .errors import InputError

#: Threads torch may use for the transformer pass.
TORCH_THREADS = 2


class Features(NamedTuple):
    """Frozen transformer features: per text, two ``TransformerOutput`` of the same arrays.

    Each holds the real wordpieces of its text as one span ([CLS] first, [SEP] last; no
    padding), (1, wordpieces, width). ``outputs``: ``tensors[0]`` the last hidden layer,
    ``hidden_states`` every layer, embeddings first as in Hugging Face's
    ``hidden_states`` (what the layer mixes read). ``last``: the last layer only
    (``from_hf(mask, last_hidden_state=...)``, what the poolings read: a gradient for
    it has one array, not one per layer).
    """

    outputs: List[TransformerOutput]
    last: List[TransformerOutput]
    n_layers: int
    width: int
    n_truncated: int


class Transformer(NamedTuple):
    tokenizer: Any
    model: Any
    n_layers: int
    width: int
    name: str
    #: the longest input the model takes (its position embeddings)
    max_length: int
    path: pathlib.Path


def first_line(err: BaseException, limit: int = 160) -> str:
    """The error's type and the start of its first line (transformers' can be very long)."""
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else ""
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " ..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def load_transformer(path: pathlib.Path, name: Optional[str] = None) -> Transformer:
    """Load tokenizer and model from a local folder; anything unusable is an ``InputError``."""
    try:
        import torch
        import transformers as _transformers
    except ImportError as err:
        raise InputError(
            f"compare needs torch and transformers ({first_line(err)}); install the "
            f"'torch' and 'demo' extras: pip install 'thinc-trf-layers[torch,demo]'."
        ) from None
    transformers: Any = _transformers  # loosely typed: from_pretrained is untyped
    torch.set_num_threads(TORCH_THREADS)
    transformers.logging.set_verbosity_error()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as err:  # transformers raises many kinds here
        raise InputError(
            f"--model {path}: no usable tokenizer in this folder ({first_line(err)}); expected "
            f"a Hugging Face model folder with its tokenizer files."
        ) from None
    try:
        model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True)
    except Exception as err:
        raise InputError(
            f"--model {path}: not a loadable Hugging Face model ({first_line(err)})."
        ) from None
    if tokenizer.pad_token is None:
        # decoder-style tokenizers (GPT-2, ...) have no padding token; the attention mask
        # keeps padding out of every pooling, so any token will do
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise InputError(
                f"--model {path}: the tokenizer has no padding, end or unknown token to pad "
                f"batches with."
            )
        tokenizer.pad_token = fallback
    model.eval()
    config = model.config
    n_hidden = getattr(config, "num_hidden_layers", None)
    width = getattr(config, "hidden_size", None)
    if not isinstance(n_hidden, int) or not isinstance(width, int):
        raise InputError(
            f"--model {path}: the config names no num_hidden_layers/hidden_size; expected an "
            f"encoder model (BERT, RoBERTa, MiniLM, ...)."
        )
    max_positions = getattr(config, "max_position_embeddings", None)
    max_length = max_positions if isinstance(max_positions, int) and max_positions > 0 else 512
    return Transformer(
        tokenizer, model, n_hidden + 1, width, name or path.name, max_length, path
    )


def extract_features(
    trf: Transformer,
    texts: Sequence[str],
    *,
    max_length: int,
    batch_size: int,
    progress: bool,
) -> Features:
    """Run the transformer once over ``texts`` (no gradients) and keep every hidden layer."""
    import torch

    ops = NumpyOps()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs: List[Optional[TransformerOutput]] = [None] * len(texts)
    last: List[Optional[TransformerOutput]] = [None] * len(texts)
    n_truncated = 0
    bar = progress_bar(total=len(texts), desc="transformer", unit="text", enabled=progress)
    try:
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = [texts[i] for i in idx]
            full = trf.tokenizer(batch, add_special_tokens=True, truncation=False)["input_ids"]
            n_truncated += sum(len(ids) > max_length for ids in full)
            enc = trf.tokenizer(
                batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            )
            try:
                with torch.no_grad():
                    out = trf.model(**enc, output_hidden_states=True, return_dict=True)
            except Exception as err:  # a model that does not take a plain text batch
                raise InputError(
                    f"--model {trf.path}: running the model on a batch of texts failed "
                    f"({first_line(err)}); expected an encoder that takes input_ids and "
                    f"attention_mask."
                ) from None
            if not getattr(out, "hidden_states", None):
                raise InputError(
                    f"--model {trf.path}: the model returned no hidden_states; expected a "
                    f"transformers model that supports output_hidden_states=True."
                )
            hidden = [h.to(torch.float32) for h in out.hidden_states]
            mask = enc["attention_mask"]
            every_layer = TransformerOutput.from_hf(mask, hidden_states=hidden, ops=ops)
            last_layer = TransformerOutput.from_hf(mask, last_hidden_state=hidden[-1], ops=ops)
            for i, output, output_last in zip(idx, every_layer, last_layer):
                outputs[i] = output
                last[i] = output_last
            if bar is not None:
                bar.update(len(idx))
    finally:
        if bar is not None:
            bar.close()
    done = [o for o in outputs if o is not None]
    done_last = [o for o in last if o is not None]
    assert len(done) == len(done_last) == len(texts) and done[0].hidden_states is not None
    n_layers = len(done[0].hidden_states)
    width = int(done[0].tensors[0].shape[2])
    return Features(done, done_last, n_layers, width, n_truncated)


def progress_bar(*, total: int, desc: str, unit: str, enabled: bool) -> Any:
    """A tqdm bar on stderr, or None (disabled, tqdm missing, or stderr not a terminal)."""
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    # disable=None: tqdm turns itself off when stderr is not a terminal. The size comes
    # from shutil, which falls back to 80x24 where a terminal reports a size of 0 (tqdm
    # would then draw nothing).
    size = shutil.get_terminal_size((80, 24))
    return tqdm(
        total=total, desc=desc, unit=unit, file=sys.stderr, disable=None, leave=False,
        ncols=min(size.columns, 100), nrows=size.lines,
    )


__all__ = [
    "Features",
    "Transformer",
    "TORCH_THREADS",
    "load_transformer",
    "extract_features",
    "progress_bar",
    "first_line",
]
