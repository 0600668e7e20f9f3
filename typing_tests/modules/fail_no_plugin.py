"""Without Thinc's plugin (configs/mypy-no-plugin.ini), chains of more than two layers
lose their output type and wrong chains pass unnoticed: configure the plugin."""
from thinc.api import Model, Softmax, chain, list2ragged, reduce_mean
from thinc.types import Floats2d

from thinc_trf_layers import map_list, select_token

# Single layers keep their precise types without the plugin.
reveal_type(select_token(0))
reveal_type(map_list(select_token(0)))

# The output type of a longer chain is left open: mypy asks for an annotation.
cls_mean_softmax = chain(  # E: var-annotated
    map_list(select_token(0)), list2ragged(), reduce_mean(), Softmax()
)
reveal_type(cls_mean_softmax)

# A wrong chain (a Floats2d fed to reduce_mean, which takes a Ragged) is not flagged:
# the plugin reports it as [layer-mismatch-output] / [layer-mismatch-input].
not_caught: Model[Floats2d, Floats2d] = chain(Softmax(), Softmax(), reduce_mean(), Softmax())
reveal_type(not_caught)
