"""One module per sample commune: what the reports say of it (its CommuneSpec) and how its
illustrative territory is drawn. The three large ones have builders of their own; the six
small ones give a SPEC and a DETAIL to the shared builder in small.py."""

from __future__ import annotations

from . import (
    altos_de_lidice,
    che_guevara,
    indio_caricuao,
    luisa_caceres_de_arismendi,
    pancha_vasquez,
    sectores_unidos,
)

#: the six small communes, in the order they are built
SMALL = (
    luisa_caceres_de_arismendi,
    che_guevara,
    altos_de_lidice,
    indio_caricuao,
    sectores_unidos,
    pancha_vasquez,
)
