"""The transformer pass of a compare run: a local Hugging Face model once over every text, no
gradients (torch and transformers imported when called); anything unusable is an InputError."""

import contextlib
import pathlib
import shutil
import sys
from typing import Any, List, NamedTuple, Optional, Sequence

from thinc.api import NumpyOps

from thinc_trf_layers import TransformerOutput

from .inputs import InputError


class Features(NamedTuple):
    """Per text, its real wordpieces as one span (``from_hf``, no padding), twice over the same
    arrays: ``outputs`` every hidden layer, embeddings first (mixes); ``last`` the last one."""

    outputs: List[TransformerOutput]
    last: List[TransformerOutput]
    n_layers: int
    width: int
    n_truncated: int


class Transformer(NamedTuple):
    tokenizer: Any
    model: Any
    name: str
    max_length: int  # the longest input the model takes (its position embeddings)
    path: pathlib.Path


def first_line(err: BaseException, limit: int = 160) -> str:
    """The error's type and the start of its first line (transformers' can be very long)."""
    text = (str(err).strip().splitlines() or [""])[0]
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0] + " ..."
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def load_transformer(path: pathlib.Path, name: Optional[str] = None) -> Transformer:
    try:
        import torch
        import transformers as _transformers
    except ImportError as err:  # installed (run checked) but broken
        raise InputError(
            f"compare needs torch and transformers ({first_line(err)}); install the 'torch' and "
            "'demo' extras: pip install 'thinc-trf-layers[torch,demo]'."
        ) from None
    transformers: Any = _transformers  # loosely typed: from_pretrained is untyped
    torch.set_num_threads(2)
    transformers.logging.set_verbosity_error()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as err:  # transformers raises many kinds here
        raise InputError(
            f"--model {path}: no usable tokenizer in this folder ({first_line(err)}); expected a "
            "Hugging Face model folder with its tokenizer files."
        ) from None
    try:
        model = transformers.AutoModel.from_pretrained(str(path), local_files_only=True)
    except Exception as err:
        raise InputError(
            f"--model {path}: not a loadable Hugging Face model ({first_line(err)})."
        ) from None
    if tokenizer.pad_token is None:  # GPT-2 ...: the mask keeps padding out, any token will do
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise InputError(
                f"--model {path}: the tokenizer has no padding, end or unknown token to pad "
                "batches with."
            )
        tokenizer.pad_token = fallback
    model.eval()
    max_positions = getattr(model.config, "max_position_embeddings", None)
    max_length = max_positions if isinstance(max_positions, int) and max_positions > 0 else 512
    return Transformer(tokenizer, model, name or path.name, max_length, path)


def extract_features(
    trf: Transformer, texts: Sequence[str], *, max_length: int, batch_size: int, progress: bool
) -> Features:
    """Run the transformer over ``texts``, batched by length, every hidden layer kept."""
    import torch

    ops = NumpyOps()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    outputs: List[Any] = [None] * len(texts)
    last: List[Any] = [None] * len(texts)
    n_truncated = 0
    with progress_bar(total=len(texts), desc="transformer", unit="text", enabled=progress) as bar:
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
                    "attention_mask."
                ) from None
            if not getattr(out, "hidden_states", None):
                raise InputError(
                    f"--model {trf.path}: the model returned no hidden_states; expected a "
                    "transformers model that supports output_hidden_states=True."
                )
            hidden = [h.to(torch.float32) for h in out.hidden_states]
            mask = enc["attention_mask"]
            every = TransformerOutput.from_hf(mask, hidden_states=hidden, ops=ops)
            only_last = TransformerOutput.from_hf(mask, last_hidden_state=hidden[-1], ops=ops)
            for i, output, output_last in zip(idx, every, only_last):
                outputs[i], last[i] = output, output_last
            if bar is not None:
                bar.update(len(idx))
    n_layers = len(outputs[0].hidden_states)
    return Features(outputs, last, n_layers, int(outputs[0].tensors[0].shape[2]), n_truncated)


def progress_bar(*, total: Optional[int], desc: str, unit: str, enabled: bool) -> Any:
    """A tqdm bar on stderr (off where stderr is not a terminal), closed when its ``with``
    block ends; without one (disabled, tqdm missing) a ``with`` block that gives None."""
    if not enabled:
        return contextlib.nullcontext()
    try:
        from tqdm import tqdm
    except ImportError:
        return contextlib.nullcontext()
    # shutil's size falls back to 80x24 where a terminal reports 0 (tqdm would then draw nothing)
    size = shutil.get_terminal_size((80, 24))
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=sys.stderr,
        disable=None,
        leave=False,
        ncols=min(size.columns, 100),
        nrows=size.lines,
    )
