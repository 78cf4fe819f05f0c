"""The C prefix of one generated model: ``<prefix>_infer``, ``<PREFIX>_K_MAX``, ...

Every external symbol, type and macro of a generated folder starts with the
prefix, so two models (or a learned model and another policy) link into one
image when their prefixes differ. ``tinyrrm export c/target --prefix`` sets it;
the default is the model's family, the model name up to its first ``_``
(``lrmpgnn_paper_a1-4_a2-16`` -> ``lrmpgnn``, ``mpgnn_paper`` -> ``mpgnn``): two
models of one family in one image need ``--prefix`` for at least one.

A prefix is lower case (``[a-z][a-z0-9_]*``: the macros are its upper-case
form, so ``Net`` and ``net`` would collide), at most :data:`MAX_LEN`
characters (C99 guarantees 31 significant characters in external names; the
longest generated one is ``<prefix>_model_data``), not a C keyword, not
reserved by C (no leading ``_``), and not the kernels' own ``tr``.
"""

from __future__ import annotations

import re

from tinyrrm.errors import UsageError

MAX_LEN = 20

#: C89 to C23 keywords, lower case (``_Bool`` and friends start with ``_``: refused anyway)
C_KEYWORDS = frozenset(
    """
    auto break case char const continue default do double else enum extern float for goto if inline int long
    register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
    alignas alignof bool constexpr false nullptr static_assert thread_local true typeof typeof_unqual
""".split()
)

#: namespaces the generated folders already use: the shared kernels (``tr_fc_s8``, ``TR_DSP``) and
#: the WMMSE kernel (``wmmse_f32``, ``WMMSE_F32_K_MAX``)
TAKEN = frozenset({"tr", "wmmse_f32"})

_IDENT = re.compile(r"[a-z][a-z0-9_]*\Z")


class PrefixError(UsageError):
    """A prefix that cannot start the generated C names."""


def check(prefix: str) -> str:
    """``prefix`` if it is a valid prefix (see the module docstring), else :class:`PrefixError`."""
    why = None
    if not _IDENT.match(prefix):
        why = "it must start with a lower-case letter and hold only a-z, 0-9 and _ (the macros use its upper-case form)"
    elif len(prefix) > MAX_LEN:
        why = f"it is {len(prefix)} characters long, at most {MAX_LEN} keep <prefix>_model_data within C's 31"
    elif prefix in C_KEYWORDS:
        why = "it is a C keyword"
    elif prefix in TAKEN:
        why = "the shared kernels use it (tr_fc_s8, TR_DSP; the WMMSE kernel: wmmse_f32, WMMSE_F32_K_MAX)"
    elif "__" in prefix:
        why = "C reserves names that contain __"
    if why:
        raise PrefixError(f"--prefix {prefix!r} is not a valid C prefix: {why}")
    return prefix


def default(model_name: str) -> str:
    """The prefix of a model named ``model_name``: its family, the name up to the first ``_``."""
    return model_name.split("_", 1)[0]


def resolve(prefix: str | None, model_name: str) -> str:
    """The checked prefix: ``prefix`` as given, else :func:`default` of ``model_name``."""
    return check(prefix if prefix is not None else default(model_name))
