"""evgate's expression language: the safe subset of Spring EL that Gravitee definitions use.

::

    from evgate.el import compile_template, ExpressionError

    keep = compile_template("{#jsonPath(#message.content, '$.feature') == "
                            "#subscription.metadata.feature}")      # once, at deploy
    keep.evaluate({"message": message, "subscription": subscription})  # per message

Objects other than mappings are readable only through ``el_properties()`` (see
``functions.py``). The full reference is docs/expression-language.md; the grammar is in
``parser.py``; the error tree in ``errors.py``.
"""
from .errors import ExpressionError, ExpressionEvaluationError, ExpressionSyntaxError
from .evaluate import Template, compile_expression, compile_template, evaluate
from .functions import FUNCTIONS

__all__ = [
    "compile_template", "compile_expression", "evaluate", "Template", "FUNCTIONS",
    "ExpressionError", "ExpressionSyntaxError", "ExpressionEvaluationError",
]
