"""The map styles (geo_comuna/maps/styles.json) against the layer registry: every allowed value
has a colour, styles name only real layers, attributes and values, and a broken file is refused
naming the problem. Read once per version of the file, from where the settings say."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from colorspacious import cspace_convert, deltaE
from PIL import ImageColor

import geo_comuna
from geo_comuna.layers import LAYERS
from geo_comuna.maps.styles import STYLES_PATH, StyleError, Styles, domains, property_names
from geo_comuna.settings import Settings


def test_style_file_matches_the_registry() -> None:
    assert Styles.load(check=False).problems() == []


def test_every_allowed_value_of_every_layer_has_a_colour() -> None:
    styles = Styles.load()
    colours = styles.raw["domains"]
    for layer in LAYERS.values():
        for attr in layer.attributes:
            if attr.domain is not None:
                missing = set(attr.domain.values) - set(colours[attr.domain.name])
                assert not missing, f"{layer.name}.{attr.name}: {missing}"
        for theme in styles.themes(layer):
            assert set(theme.colours) >= set(layer.attribute(theme.by).domain.values)


#: the colours of a list of at most this many values must stay apart for every reader; more
#: (15 products, 10 kinds of facility) cannot all be told apart by colour alone, and their
#: legends, tooltips and popups name each value
FEW_VALUES = 7
#: the least CAM02-UCS distance between two colours of such a list, as each colour vision
#: deficiency sees them (~10: told apart at a glance on a map; the red and green of the
#: tenure palette were 6.8 apart for protanopes, occupied and regularized alike)
APART = 10.0


def test_few_valued_lists_stay_apart_for_colour_blind_readers() -> None:
    """Each colour simulated as a reader with protanopia, deuteranopia or tritanopia sees it
    (Machado et al. 2009, full severity, as colorspacious computes it): no two values of a
    short list look alike."""
    styles = Styles.load()
    lists = {f"domains.{n}": c for n, c in styles.raw["domains"].items()}
    analyses = styles.raw["analyses"].items()
    lists |= {f"analyses.{n}": a["colors"] for n, a in analyses if "colors" in a}
    checked = 0
    for where, colours in lists.items():
        if len(colours) > FEW_VALUES:
            continue
        checked += 1
        rgb = {value: np.array(ImageColor.getrgb(c)) / 255 for value, c in colours.items()}
        for cvd in ("protanomaly", "deuteranomaly", "tritanomaly"):
            space = {"name": "sRGB1+CVD", "cvd_type": cvd, "severity": 100}
            seen = {v: np.clip(cspace_convert(c, space, "sRGB1"), 0, 1) for v, c in rgb.items()}
            for a, b in itertools.combinations(seen, 2):
                apart = float(deltaE(seen[a], seen[b], input_space="sRGB1"))
                assert apart >= APART, f"{where}: {a} and {b} look alike with {cvd} ({apart:.1f})"
    assert checked >= 15  # tenure, land use, water, electricity, materials...


def test_lines_drawn_over_parcels_stand_apart_from_the_tenure_colours() -> None:
    """Found from outside: the state lines were the red of abandoned parcels (they vanished
    across them) and the outline of parcels with recorded rights the purple of disputed ones
    (a parcel with rights looked disputed)."""
    styles = Styles.load()
    tenure = styles.raw["domains"]["tenure"]
    for overlay in ("state_lines", "holdings"):
        line = np.array(ImageColor.getrgb(styles.overlay(overlay)["color"])) / 255
        for value, fill in tenure.items():
            apart = float(
                deltaE(line, np.array(ImageColor.getrgb(fill)) / 255, input_space="sRGB1")
            )
            assert apart >= 20, f"{overlay} looks like {value} ({apart:.1f})"


def test_styles_name_only_real_attributes() -> None:
    styles = Styles.load()
    for layer in LAYERS.values():
        style = styles.layer_style(layer)
        assert style, f"no style for layer {layer.name}"
        props = set(property_names(layer))
        for key in ("tooltip", "popup"):
            assert set(style.get(key, [])) <= props, (layer.name, key)
        for theme in style["themes"]:
            attr = layer.attribute(theme["by"])
            assert attr is not None and attr.domain is not None, (layer.name, theme["by"])
        assert set(styles.wanted_properties(layer)) <= props


def test_labels_default_to_the_registry_and_can_be_overridden() -> None:
    styles = Styles.load()
    tenure = domains()["tenure"]
    assert styles.value_label(tenure, "occupied", "en") == tenure.values["occupied"].en
    assert styles.value_label(tenure, "abandoned", "es") == "Abandonada (recuperable)"
    theme = styles.theme(LAYERS["parcels"], "tenure")
    assert styles.legend_title(theme, "en") == "Parcels by tenure"
    labels = [label for _, label in styles.legend_entries(theme, "en")]
    assert labels[1:] == ["Occupied", "Regularizing", "Regularized", "Disputed"]


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda raw: raw["layers"]["parcels"]["popup"].append("owner"), "owner"),
        (lambda raw: raw["layers"]["dwellings"]["themes"][0].update(by="residents"), "residents"),
        (lambda raw: raw["domains"]["water"].pop("truck"), "truck"),
        (lambda raw: raw["domains"]["tenure"].update(stolen="#000000"), "stolen"),
        (lambda raw: raw["domains"]["path_kind"].update(road="red"), "'red'"),
        (lambda raw: raw["layers"].pop("facilities"), "facilities"),
    ],
)
def test_a_broken_style_file_is_refused(tmp_path: Path, change, expected: str) -> None:
    raw = copy.deepcopy(Styles.load().raw)  # the loaded styles are shared: never changed
    change(raw)
    path = tmp_path / "styles.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(StyleError, match=expected):
        Styles.load(path)


def test_the_styles_are_read_once_and_again_after_an_edit(tmp_path: Path) -> None:
    """Every tile asks for the styles: they are parsed once per version of the file, and a
    planner's edit still shows on the next request."""
    path = tmp_path / "styles.json"
    raw = copy.deepcopy(Styles.load().raw)
    path.write_text(json.dumps(raw), encoding="utf-8")
    first = Styles.load(path)
    assert Styles.load(path) is first
    raw["background"] = "#123456"
    path.write_text(json.dumps(raw, indent=1), encoding="utf-8")
    edited = Styles.load(path)
    assert edited is not first and edited.background == "#123456"


def test_the_styles_come_from_the_settings(tmp_path: Path) -> None:
    """GEO_COMUNA_STYLES_PATH names a planner's copy; by default the package's own file."""
    assert Settings().styles_path == STYLES_PATH
    assert STYLES_PATH.is_file() and Path(geo_comuna.__file__).parent in STYLES_PATH.parents
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({**Styles.load().raw, "background": "#0a0b0c"}), encoding="utf-8")
    settings = Settings(styles_path=path)
    assert Styles.load(settings.styles_path).background == "#0a0b0c"
    with pytest.raises(StyleError, match="nowhere.json"):
        Styles.load(tmp_path / "nowhere.json")


def test_a_graduated_legend_labels_each_class_by_the_values_it_draws() -> None:
    """Water hookups colour the homes by their project's number. Eight homes of projects 1, 1,
    1, 1, 2, 3, 3, 5 in five quantile classes: the breaks are 1, 2, 3, 5 (one is repeated).
    The legend said "1 – 1", "1 – 2", "2 – 3", "3 – 5", every class but the first claiming
    the class before's upper value. Each class is labelled by the values it draws."""
    from geo_comuna.maps.analysis_map import analysis_spec

    projects = [1, 1, 1, 1, 2, 3, 3, 5]
    features = [
        {"type": "Feature", "geometry": None, "properties": {"project": p}} for p in projects
    ]
    spec, entries = analysis_spec("water-hookups", features, Styles.load(), "en")
    assert spec["by"] == "project" and spec["breaks"] == [1, 2, 3, 5]
    assert [label for _, label in entries] == ["1", "2", "3", "5"]
    assert [colour for colour, _ in entries] == spec["ramp"][:4]

    depths = [0.5, 0.75, 1, 1.25, 2, 3, 2000.5, 2500, 3000, 3100]
    features = [{"type": "Feature", "geometry": None, "properties": {"project": d}} for d in depths]
    _, entries = analysis_spec("water-hookups", features, Styles.load(), "es")
    assert [label for _, label in entries] == [
        "0,5 – 0,75",
        "1 – 1,25",
        "2 – 3",
        "2.000,5 – 2.500",
        "3.000 – 3.100",
    ]


def test_what_a_map_draws_in_grey_its_legend_says() -> None:
    """Found from outside: a water sector without a project was drawn grey and no legend
    entry said why; values past the colours a legend lists are grey too, and said."""
    from geo_comuna.maps.analysis_map import MAX_CATEGORIES, analysis_spec
    from geo_comuna.maps.styles import FALLBACK_COLOUR

    styles = Styles.load()
    features = [{"geometry": None, "properties": {"project": p}} for p in (1, 2, None)]
    _, entries = analysis_spec("water-hookups", features, styles, "es")
    assert entries[-1] == (FALLBACK_COLOUR, "sin dato") and len(entries) == 3
    _, entries = analysis_spec("water-hookups", features[:2], styles, "en")
    assert FALLBACK_COLOUR not in dict(entries)  # nothing grey, nothing said

    kinds = [f"k{i:02d}" for i in range(MAX_CATEGORIES + 2)] + [None]
    features = [{"geometry": None, "properties": {"kind": k}} for k in kinds]
    spec, entries = analysis_spec("land-recovery", features, styles, "en")
    assert spec["by"] == "kind" and len(spec["colors"]) == MAX_CATEGORIES
    assert entries[-1] == (FALLBACK_COLOUR, "other values or no value")
    _, entries = analysis_spec("land-recovery", features[:-1], styles, "es")
    assert entries[-1] == (FALLBACK_COLOUR, "otros valores")


def test_an_analysis_maps_codes_are_said_in_its_language() -> None:
    """Popups of analysis maps showed codes ("Tenencia: abandoned", "Electricidad: none",
    "Conexión: network") though the coloured property had its words: every coded field of a
    popup or tooltip has them, and a popup listing every property finds them by name."""
    from geo_comuna.maps.analysis_map import analysis_spec

    styles = Styles.load()
    tenure, water = domains()["tenure"], domains()["water"]

    def popup(name: str, props: dict, lang: str) -> tuple[dict, dict]:
        spec, _ = analysis_spec(name, [{"geometry": None, "properties": props}], styles, lang)
        fields = {f["name"]: f.get("values", {}) for f in spec["fields"]["popup"] or []}
        return spec, fields

    _, fields = popup("land-recovery", {"kind": "candidate", "tenure": "abandoned"}, "es")
    assert fields["tenure"]["abandoned"] == "Abandonada (recuperable)"
    assert fields["land_use"]["idle"] == styles.value_label(domains()["land_use"], "idle", "es")
    assert fields["kind"]["candidate"] == "Candidata a recuperación"
    _, fields = popup("land-recovery", {"kind": "candidate"}, "en")
    assert fields["tenure"]["abandoned"] == styles.value_label(tenure, "abandoned", "en")
    _, fields = popup("water-hookups", {"project": 1, "water": "none"}, "es")
    assert fields["water"]["none"] == styles.value_label(water, "none", "es")
    assert fields["connection"] == {"network": "Por las veredas", "straight_line": "En línea recta"}
    _, fields = popup("stair-access", {"minutes": 3.0}, "en")
    assert fields["destination"] == {"road": "Road", "transit_stop": "Transit stop"}
    spec, fields = popup("electricity-gaps", {"kind": "dwelling"}, "es")
    assert fields == {}  # every property: found by name in spec["values"]
    electricity = domains()["electricity"]
    assert spec["values"]["electricity"]["precarious"] == styles.value_label(
        electricity, "precarious", "es"
    )
    assert spec["values"]["kind"]["dwelling"] == "Vivienda sin conexión formal"


def test_land_recoverys_notes_are_said_in_the_maps_language() -> None:
    """A candidate's note is English in the answer (the API's); the map says it in its
    language: every note the analysis writes has its words."""
    from geo_comuna.analysis.land_recovery import candidates
    from geo_comuna.maps.analysis_map import analysis_spec

    spec, _ = analysis_spec(
        "land-recovery",
        [{"geometry": None, "properties": {"kind": "candidate"}}],
        Styles.load(),
        "es",
    )
    notes = spec["values"]["note"]
    for note in (candidates.OFF_DEM, candidates.UNSCORED):
        assert note in notes and notes[note] != note


@pytest.mark.parametrize("name", ["water-hookups", "electricity-gaps", "stair-access"])
def test_a_public_view_of_chosen_parameters_shows_no_residents_field(name: str) -> None:
    """Parameters an outsider chose withhold every residents figure: their map colours by
    a figure it still has and lists no residents in its popups (found from outside: each
    said "—" with the footnote of groups too small, which was not the reason)."""
    from geo_comuna.maps.analysis_map import analysis_spec

    sector = {"sector": "La Cumbre", "dwellings": 12, "dwellings_without_piped": 5}
    features = [{"geometry": None, "properties": {**sector, "minutes_median": 3.0}}]
    spec, _ = analysis_spec(name, features, Styles.load(), "es", sectors=True, chosen=True)
    named = [f["name"] for f in (spec["fields"]["popup"] or []) + (spec["fields"]["tooltip"] or [])]
    assert named and not [n for n in named if "residents" in n], named
    assert spec["by"] is None or "residents" not in spec["by"]
    if name == "water-hookups":
        assert spec["by"] == "dwellings_without_piped"
