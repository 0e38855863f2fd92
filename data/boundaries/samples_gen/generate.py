"""Every commune in order, built and written."""

from __future__ import annotations

from collections.abc import Callable

from .collected import Samples, add_commune
from .communes import SMALL
from .communes.cinco_de_marzo import CINCO_DE_MARZO, build_cinco_de_marzo
from .communes.el_maizal import EL_MAIZAL, build_el_maizal
from .communes.monte_sinai import MONTE_SINAI, build_monte_sinai
from .communes.small import build_small
from .placement import Placed, load_states, place
from .writers import write_all

#: the order communes are built in: each draws from its own seeds, but features are numbered
#: and written in this order
ALL_SPECS = (EL_MAIZAL, MONTE_SINAI, CINCO_DE_MARZO, *(c.SPEC for c in SMALL))


def generate() -> None:
    states = load_states()
    out = Samples()
    builders: dict[str, Callable[[Placed], None]] = {
        EL_MAIZAL.code: lambda p: build_el_maizal(out, p, states),
        MONTE_SINAI.code: lambda p: build_monte_sinai(out, p),
        CINCO_DE_MARZO.code: lambda p: build_cinco_de_marzo(out, p),
        **{c.SPEC.code: (lambda p, d=c.DETAIL: build_small(out, p, d)) for c in SMALL},
    }
    for spec in ALL_SPECS:
        print(f"building {spec.code}")
        placed = place(spec, states)
        add_commune(out, placed)
        builders[spec.code](placed)
    write_all(out)
