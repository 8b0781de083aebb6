"""Kraken asset and pair names: one table-driven resolver for every form Kraken uses.

Kraken names the same economic asset several ways: legacy ids with an X/Z prefix (``XXBT``,
``ZUSD``), modern ids equal to the altname (``SOL``), read-only balance variants with a suffix
(``DOT28.S``, ``XBT.M``, ``USD.HOLD``), staked forms (``ETH2``) and common aliases (``BTC``,
``DOGE``). Pairs have an id (``XXBTZUSD``), an altname (``XBTUSD``), a WebSocket v1 name
(``XBT/USD``) and the modern ``BTC/USD`` form. Everything here is driven by the ``result``
objects of ``/0/public/Assets`` and ``/0/public/AssetPairs``, never by stripping a leading
X or Z blindly (``XTZ`` is a plain id).

Normalized names are Kraken altnames with suffixes folded away: ``XBT``, ``USD``, ``ETH``,
``XDG``. A pair's service symbol is ``BASE/QUOTE`` of those names, e.g. ``XBT/USD``.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any

__all__ = [
    "AssetInfo",
    "KrakenNames",
    "NormalizedAsset",
    "PairInfo",
    "UnknownAssetName",
    "UnknownPairName",
]

#: Read-only balance suffixes Kraken appends to an asset code (longest first for matching).
VARIANT_SUFFIXES: tuple[str, ...] = (".HOLD", ".S", ".M", ".F", ".B", ".P", ".T")

#: Names people and other venues use for Kraken's altnames.
ASSET_ALIASES: Mapping[str, str] = {"BTC": "XBT", "DOGE": "XDG"}

#: Codes that themselves denote a staked form of another asset, without a suffix.
STAKED_CODES: Mapping[str, str] = {"ETH2": "ETH"}

_BONDED_DAYS = re.compile(r"^(?P<code>[A-Z][A-Z0-9]*?[A-Z])(?P<days>\d+)$")


class UnknownAssetName(ValueError):
    """An asset name or id that the asset table cannot resolve; the message names the input."""

    def __init__(self, name: object) -> None:
        super().__init__(f"unknown Kraken asset: {name!r}")
        self.name = name


class UnknownPairName(ValueError):
    """A pair name that matches no pair in the table; the message names the input."""

    def __init__(self, name: object) -> None:
        super().__init__(f"unknown Kraken asset pair: {name!r}")
        self.name = name


@dataclass(frozen=True, kw_only=True)
class AssetInfo:
    """One row of Kraken's asset table.

    ``id`` is Kraken's asset id (``XXBT``), ``name`` its altname (``XBT``), ``decimals`` the
    record-keeping precision of balances and ledgers, ``display_decimals`` the display one.
    """

    id: str
    name: str
    decimals: int
    display_decimals: int


@dataclass(frozen=True, kw_only=True)
class NormalizedAsset:
    """An asset code as Kraken sent it, resolved to the underlying asset it stands for.

    ``raw`` is the code as received (``DOT28.S``), ``name`` the normalized altname of the
    underlying (``DOT``), ``suffix`` the variant suffix (``.S``) or None, ``bonded_days`` the
    lock period of a bonded staking variant (28) or None, and ``staked`` whether the code
    itself is a staked form without a suffix (``ETH2``).
    """

    raw: str
    name: str
    suffix: str | None
    bonded_days: int | None
    staked: bool = False

    @property
    def is_variant(self) -> bool:
        """True for staking, earn and hold balances: they count towards ``name`` but are not
        directly tradeable as it."""
        return self.suffix is not None or self.staked or self.bonded_days is not None


@dataclass(frozen=True, kw_only=True)
class PairInfo:
    """One tradeable Kraken pair with the fields order checks and formatting need.

    ``base``/``quote`` are the altnames of ``base_id``/``quote_id`` (``XBT``, ``USD``).
    ``pair_decimals`` applies to prices, ``lot_decimals`` to volumes (base), ``cost_decimals``
    to cost, fee and average price (quote). ``ordermin`` is the minimum volume (base),
    ``costmin`` the minimum price × volume (quote), ``tick_size`` the price increment.
    ``fees``/``fees_maker`` are tier tables of (30-day volume in USD, fee in percent of cost):
    a taker fill of cost C in the first tier pays ``C × fees[0][1] / 100``.
    """

    id: str
    altname: str
    wsname: str
    base: str
    quote: str
    base_id: str
    quote_id: str
    pair_decimals: int
    lot_decimals: int
    cost_decimals: int
    ordermin: Decimal
    costmin: Decimal
    tick_size: Decimal
    fees: tuple[tuple[Decimal, Decimal], ...]
    fees_maker: tuple[tuple[Decimal, Decimal], ...]

    @property
    def symbol(self) -> str:
        """The service's normalized pair name, ``BASE/QUOTE`` of altnames: ``XBT/USD``."""
        return f"{self.base}/{self.quote}"


def _decimal_field(entry: Mapping[str, Any], key: str, owner: str, default: str) -> Decimal:
    value = entry.get(key, default)
    try:
        # str() first: a JSON float such as 0.4 must become Decimal("0.4"), not its binary twin.
        result = Decimal(str(value))
    except (InvalidOperation, ValueError) as error:
        raise ValueError(f"{owner}: field {key!r} is not a decimal: {value!r}") from error
    if not result.is_finite():
        raise ValueError(f"{owner}: field {key!r} is not finite: {value!r}")
    return result


def _int_field(entry: Mapping[str, Any], key: str, owner: str, default: int | None = None) -> int:
    if key not in entry:
        if default is None:
            raise ValueError(f"{owner}: missing field {key!r}")
        return default
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{owner}: field {key!r} is not an integer: {value!r}")
    return value


def _str_field(entry: Mapping[str, Any], key: str, owner: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value:
        raise ValueError(f"{owner}: missing or empty field {key!r}")
    return value


def _fee_table(
    entry: Mapping[str, Any], key: str, owner: str
) -> tuple[tuple[Decimal, Decimal], ...]:
    rows = entry.get(key) or []
    if not isinstance(rows, list | tuple):
        raise ValueError(f"{owner}: field {key!r} is not a list of tiers")
    tiers: list[tuple[Decimal, Decimal]] = []
    for row in rows:
        if not isinstance(row, list | tuple) or len(row) != 2:
            raise ValueError(f"{owner}: field {key!r} has a malformed tier: {row!r}")
        try:
            tiers.append((Decimal(str(row[0])), Decimal(str(row[1]))))
        except (InvalidOperation, ValueError) as error:
            raise ValueError(f"{owner}: field {key!r} has a malformed tier: {row!r}") from error
    return tuple(tiers)


def _split_suffixes(code: str) -> tuple[str, str | None]:
    """Strip every trailing variant suffix (``DOT28.S.S`` has two); return the code and the
    outermost suffix seen first from the left."""
    first_suffix: str | None = None
    stripped = True
    while stripped:
        stripped = False
        for suffix in VARIANT_SUFFIXES:
            if code.endswith(suffix) and len(code) > len(suffix):
                code = code[: -len(suffix)]
                first_suffix = suffix
                stripped = True
                break
    return code, first_suffix


class KrakenNames:
    """Resolves Kraken asset and pair names from the Assets and AssetPairs tables.

    Immutable once built; safe to share between threads.
    """

    def __init__(self, assets: tuple[AssetInfo, ...], pairs: tuple[PairInfo, ...]) -> None:
        self._assets_by_id: dict[str, AssetInfo] = {asset.id: asset for asset in assets}
        self._ids_by_altname: dict[str, str] = {}
        for asset in assets:
            # A legacy id and its altname both exist only for legacy assets; the id wins.
            self._ids_by_altname.setdefault(asset.name, asset.id)
        self._pairs = pairs
        self._pairs_by_text: dict[str, PairInfo] = {}
        self._pairs_by_legs: dict[tuple[str, str], PairInfo] = {}
        for pair in pairs:
            for text in (pair.id, pair.altname, pair.wsname):
                self._pairs_by_text.setdefault(text.upper(), pair)
            if not pair.id.endswith(".d"):
                self._pairs_by_legs.setdefault((pair.base, pair.quote), pair)

    # ----------------------------------------------------------------- construction

    @classmethod
    def bundled(cls) -> KrakenNames:
        """The tables shipped in ``kraken/data`` (a recent capture of Kraken's answers)."""
        return _bundled_names()

    @classmethod
    def from_results(cls, assets: Mapping[str, Any], asset_pairs: Mapping[str, Any]) -> KrakenNames:
        """Build from the ``result`` objects of ``/0/public/Assets`` and ``AssetPairs``.

        Raises ValueError naming the entry and field when a row is malformed.
        """
        if not isinstance(assets, Mapping):
            raise ValueError("assets: expected a mapping of asset id to asset entry")
        if not isinstance(asset_pairs, Mapping):
            raise ValueError("asset_pairs: expected a mapping of pair id to pair entry")
        asset_rows: list[AssetInfo] = []
        for asset_id, entry in assets.items():
            owner = f"asset {asset_id!r}"
            if not isinstance(entry, Mapping):
                raise ValueError(f"{owner}: entry is not an object")
            decimals = _int_field(entry, "decimals", owner)
            asset_rows.append(
                AssetInfo(
                    id=str(asset_id),
                    name=_str_field(entry, "altname", owner),
                    decimals=decimals,
                    display_decimals=_int_field(entry, "display_decimals", owner, decimals),
                )
            )
        altname_of = {row.id: row.name for row in asset_rows}
        pair_rows: list[PairInfo] = []
        for pair_id, entry in asset_pairs.items():
            owner = f"pair {pair_id!r}"
            if not isinstance(entry, Mapping):
                raise ValueError(f"{owner}: entry is not an object")
            base_id = _str_field(entry, "base", owner)
            quote_id = _str_field(entry, "quote", owner)
            base = ASSET_ALIASES.get(
                altname_of.get(base_id, base_id), altname_of.get(base_id, base_id)
            )
            quote = ASSET_ALIASES.get(
                altname_of.get(quote_id, quote_id), altname_of.get(quote_id, quote_id)
            )
            pair_decimals = _int_field(entry, "pair_decimals", owner)
            wsname = entry.get("wsname")
            pair_rows.append(
                PairInfo(
                    id=str(pair_id),
                    altname=_str_field(entry, "altname", owner),
                    wsname=wsname if isinstance(wsname, str) and wsname else f"{base}/{quote}",
                    base=base,
                    quote=quote,
                    base_id=base_id,
                    quote_id=quote_id,
                    pair_decimals=pair_decimals,
                    lot_decimals=_int_field(entry, "lot_decimals", owner),
                    cost_decimals=_int_field(entry, "cost_decimals", owner, pair_decimals),
                    ordermin=_decimal_field(entry, "ordermin", owner, "0"),
                    costmin=_decimal_field(entry, "costmin", owner, "0"),
                    tick_size=_decimal_field(
                        entry, "tick_size", owner, str(Decimal(1).scaleb(-pair_decimals))
                    ),
                    fees=_fee_table(entry, "fees", owner),
                    fees_maker=_fee_table(entry, "fees_maker", owner),
                )
            )
        return cls(tuple(asset_rows), tuple(pair_rows))

    # ----------------------------------------------------------------- assets

    def asset(self, raw: str) -> NormalizedAsset:
        """Resolve an asset code as Kraken sends it to its underlying normalized name.

        ``XXBT``→XBT, ``ZUSD``→USD, ``XBT.M``→XBT, ``DOT28.S``→DOT (bonded 28 days),
        ``ETH2``/``ETH2.S``→ETH, ``USD.HOLD``→USD, ``KFEE``→FEE, ``BTC``→XBT, ``DOGE``→XDG.
        A code absent from the table keeps its code with the suffix stripped, so a new
        Kraken asset still resolves. Raises UnknownAssetName only for an empty input.
        """
        if not isinstance(raw, str) or not raw.strip():
            raise UnknownAssetName(raw)
        text = raw.strip().upper()
        code, suffix = _split_suffixes(text)
        bonded_days: int | None = None
        if suffix is not None and not self._is_known_code(code):
            match = _BONDED_DAYS.match(code)
            if match:
                code = match.group("code")
                bonded_days = int(match.group("days"))
        staked = code in STAKED_CODES
        name = STAKED_CODES[code] if staked else self._altname_of(code)
        return NormalizedAsset(
            raw=raw, name=name, suffix=suffix, bonded_days=bonded_days, staked=staked
        )

    def asset_name(self, raw: str) -> str:
        """Shorthand for ``asset(raw).name``."""
        return self.asset(raw).name

    def asset_id(self, name: str) -> str:
        """Kraken's asset id for a name, alias or id: ``XBT``/``BTC``/``XXBT`` → ``XXBT``.

        Raises UnknownAssetName when the table has no such asset.
        """
        if not isinstance(name, str) or not name.strip():
            raise UnknownAssetName(name)
        text = name.strip().upper()
        if text in self._assets_by_id:
            return text
        altname = ASSET_ALIASES.get(text, text)
        asset_id = self._ids_by_altname.get(altname)
        if asset_id is None:
            raise UnknownAssetName(name)
        return asset_id

    def asset_info(self, name_or_id: str) -> AssetInfo:
        """The table row for an asset given by id, altname or alias; UnknownAssetName if absent."""
        return self._assets_by_id[self.asset_id(name_or_id)]

    def assets(self) -> tuple[AssetInfo, ...]:
        """Every asset in the table, in table order."""
        return tuple(self._assets_by_id.values())

    def _is_known_code(self, code: str) -> bool:
        return code in self._assets_by_id or code in self._ids_by_altname

    def _altname_of(self, code: str) -> str:
        if code in ASSET_ALIASES:
            return ASSET_ALIASES[code]
        info = self._assets_by_id.get(code)
        if info is not None:
            return ASSET_ALIASES.get(info.name, info.name)
        return code

    def _leg_name(self, text: str) -> str:
        """A pair leg as written (``BTC``, ``XXBT``, ``ETH2.S``) to the altname pairs use.

        Variants are not folded here: ``ETH2.S/ETH`` is its own pair, not ``ETH/ETH``.
        """
        code = text.strip().upper()
        return self._altname_of(code)

    # ----------------------------------------------------------------- pairs

    def pair(self, text: str) -> PairInfo:
        """The pair for any of its names: id ``XXBTZUSD``, altname ``XBTUSD``, wsname
        ``XBT/USD``, ``BTC/USD``, ``btc/usd`` or ``BTCUSD``. Raises UnknownPairName otherwise.
        """
        if not isinstance(text, str) or not text.strip():
            raise UnknownPairName(text)
        key = text.strip().upper()
        found = self._pairs_by_text.get(key)
        if found is not None:
            return found
        if "/" in key:
            base, _, quote = key.partition("/")
            found = self._pairs_by_legs.get((self._leg_name(base), self._leg_name(quote)))
        else:
            # Glued names such as BTCUSD: try every split, the table decides.
            for cut in range(1, len(key)):
                found = self._pairs_by_legs.get(
                    (self._leg_name(key[:cut]), self._leg_name(key[cut:]))
                )
                if found is not None:
                    break
        if found is None:
            raise UnknownPairName(text)
        return found

    def pair_for(self, base: str, quote: str) -> PairInfo | None:
        """The pair trading ``base`` against ``quote`` (names, aliases or ids), or None."""
        if not base or not quote:
            return None
        return self._pairs_by_legs.get((self._leg_name(base), self._leg_name(quote)))

    def pairs(self) -> tuple[PairInfo, ...]:
        """Every pair in the table, in table order."""
        return self._pairs


def load_bundled_results(*, wire: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    """The bundled Assets and AssetPairs ``result`` objects, as stored (fresh copies).

    By default JSON numbers with a fraction are parsed as Decimal so fee percentages keep
    their written digits; ``wire=True`` keeps them as JSON numbers, to send them on as Kraken
    does.
    """
    package = resources.files("kraken.data")
    parse_float = float if wire else Decimal
    assets = json.loads(
        package.joinpath("assets.json").read_text(encoding="utf-8"), parse_float=parse_float
    )
    pairs = json.loads(
        package.joinpath("asset_pairs.json").read_text(encoding="utf-8"), parse_float=parse_float
    )
    return assets, pairs


@functools.cache
def _bundled_names() -> KrakenNames:
    assets, pairs = load_bundled_results()
    return KrakenNames.from_results(assets, pairs)
