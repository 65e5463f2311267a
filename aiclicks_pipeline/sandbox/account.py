"""The synthetic AIclicks account and its API-level truth.

Every value is a pure function of (seed, size, anchor, clock time): each number is drawn from a
hash of (seed, entity id, date, purpose), never from a shared random stream, so the answer does
not depend on which request came first, on the thread that asked, or on the machine.

The methods return exactly the ``data`` items the API serves at ``now`` (no paging, no faults,
no cache); the server adds those.

How the numbers hang together (so a warehouse built from them looks believable):

* per domain and day there is one set of counts: responses, responses mentioning the brand,
  citation entries, citation entries pointing at the brand. The four time series are views of
  them; brand-rankings mentions are their sum over the window; /citations splits the window's
  citation entries over cited pages;
* today and yesterday are provisional (counts still coming in), older days are final;
* prompts and competitors have a creation time, some after the anchor, so moving the clock
  forward reveals them.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Dict, List, Optional, Sequence, Tuple, TypeVar, Union

from ..settings import CHANNELS, CITATION_MODEL_SLUGS, DAYS_BUCKETS
from . import vocabulary as vocab
from .clock import parse_instant

# The day the synthetic history is built around (the examples' "today"). The Sandbox passes its
# clock's start instead, so a live sandbox always has history behind it and a few prompts ahead.
DEFAULT_ANCHOR = "2026-06-17T00:00:00Z"
SERIES_METRICS = ("visibility", "mentions", "citability", "citations")
# Today (age 0) and yesterday (age 1) are still being revised; from age 2 on a day is final.
PROVISIONAL_DAYS = 2
# Past-days fan-out results kept (one per domain/window/model); a sync pages one domain at a time.
FANOUT_CACHE_SIZE = 64

SEARCH_VOLUMES = (
    10, 20, 30, 50, 70, 90, 110, 140, 170, 210, 260, 320, 390, 480, 590, 720, 880, 1000, 1300,
    1600, 1900, 2400, 2900, 3600, 4400, 5400, 6600, 8100, 9900, 12100, 14800, 18100, 22200,
)

T = TypeVar("T")


def iso_ms(moment: datetime) -> str:
    """`2026-06-17T10:00:11.218Z`: the format of `created_at` and `generated_at`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_us(moment: datetime) -> str:
    """`2026-04-27T08:58:37.268809+00:00`: the format of /citations `first_seen`/`last_seen`.

    Written by hand because ``isoformat`` drops the fraction when microseconds are 0.
    """
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def day_start(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=timezone.utc)


def snap_days(days: int) -> int:
    """The bucket of DAYS_BUCKETS nearest to ``days``.

    Hardest reading of a tie (e.g. 60 is 30 from both 30 and 90): the SMALLER bucket wins, so a
    client asking for 60 days gets only 30 and must not assume the window covers what it asked.
    """
    return min(DAYS_BUCKETS, key=lambda bucket: (abs(bucket - days), bucket))


def window_dates(days: int, now: datetime) -> List[date]:
    """`days` calendar days ending with today's (partial, UTC) date inclusive (docs/api-notes.md,
    The days window)."""
    today = now.astimezone(timezone.utc).date()
    return [today - timedelta(days=back) for back in range(days - 1, -1, -1)]


def percent(part: int, whole: int):
    """0-100 with 2 decimals; an exact 0 is sent as the integer 0, as in the examples, so a client
    sees both ints and floats in the same column."""
    if not whole or not part:
        return 0
    return round(min(100.0, 100.0 * part / whole), 2)


def _encode(parts: tuple) -> bytes:
    return "|".join(map(str, parts)).encode()


class Draws:
    """Sixteen independent uniform values (slots 0-15) from one 64-byte digest: hot paths pay
    for one hash and take many values from it. ``uuid`` uses the bytes of slots 12-15."""

    __slots__ = ("_digest",)

    def __init__(self, digest: bytes):
        self._digest = digest

    def unit(self, slot: int) -> float:
        return int.from_bytes(self._digest[4 * slot : 4 * slot + 4], "big") / 2**32

    def pick(self, options: Sequence[T], slot: int) -> T:
        return options[int(self.unit(slot) * len(options))]

    def uuid(self) -> str:
        return str(uuid.UUID(bytes=self._digest[48:64], version=4))


class HashRandom:
    """Random values that are a pure function of (seed, parts): no state, no call order.

    ``scoped(*parts)`` pre-hashes a common prefix (e.g. a prompt id) so a loop over days
    hashes only the day.
    """

    def __init__(self, seed: int, _state=None):
        self._state = _state or hashlib.blake2b(f"{seed}|".encode(), digest_size=64)

    def scoped(self, *parts) -> "HashRandom":
        state = self._state.copy()
        state.update(_encode(parts) + b"|")
        return HashRandom(0, state)

    def draws(self, *parts) -> Draws:
        state = self._state.copy()
        state.update(_encode(parts))
        return Draws(state.digest())

    def unit(self, *parts) -> float:
        """Uniform in [0, 1)."""
        return self.draws(*parts).unit(0)

    def between(self, low: float, high: float, *parts) -> float:
        return low + (high - low) * self.unit(*parts)

    def integer(self, low: int, high: int, *parts) -> int:
        """Uniform integer in [low, high] inclusive."""
        return low + int(self.unit(*parts) * (high - low + 1))

    def pick(self, options: Sequence[T], *parts) -> T:
        return options[int(self.unit(*parts) * len(options))]

    def uuid(self, *parts) -> str:
        return self.draws(*parts).uuid()


@dataclass(frozen=True)
class Prompt:
    id: str
    text: str
    estimated_search_volume: int
    created_at: datetime

    def item(self) -> dict:
        return {
            "id": self.id,
            "text": self.text,
            "estimated_search_volume": self.estimated_search_volume,
            "created_at": iso_ms(self.created_at),
        }


@dataclass(frozen=True)
class Competitor:
    id: str
    name: str
    website: str
    # When the user added it as a dedicated competitor; hidden from the API, it only decides
    # from when on the competitor is listed in /brand-rankings.
    added_at: datetime
    # Mentions relative to the brand's own.
    strength: float


@dataclass(frozen=True)
class CitedPage:
    url: str
    host: str
    page_type: str
    page_title: str
    owner: str  # "brand" | "competitor" | "third_party"
    weight: float
    first_seen: datetime
    models: Tuple[str, ...]


@dataclass(frozen=True)
class DayCounts:
    """What the analyses of one domain produced on one day."""

    responses: int = 0
    mentioned: int = 0  # responses that mention the brand
    citations_total: int = 0  # citation entries on those responses, every host
    citations_brand: int = 0  # citation entries whose host is the brand's


NO_RESPONSES = DayCounts()

# metric -> (numerator count, denominator count or None for a plain count)
SERIES_DEFINITIONS: Dict[str, Tuple[str, Optional[str]]] = {
    "visibility": ("mentioned", "responses"),
    "mentions": ("mentioned", None),
    "citability": ("citations_brand", "citations_total"),
    "citations": ("citations_brand", None),
}


@dataclass(frozen=True)
class DomainInfo:
    id: str
    name: str
    brand: str
    website: str
    created_at: datetime

    def item(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "website": self.website,
            "created_at": iso_ms(self.created_at),
        }


class DomainModel:
    """The static, per-domain structures, built once on first use."""

    def __init__(self, info: DomainInfo, account: "Account"):
        rnd, did = account.random, info.id
        self.info = info
        self.product, self.aliases = rnd.pick(vocab.MARKETS, did, "market")
        k = rnd.integer(3, len(CHANNELS), did, "channel-count")
        chosen = sorted(CHANNELS, key=lambda c: rnd.unit(did, "channel-order", c))[:k]
        self.channels: Tuple[str, ...] = tuple(c for c in CHANNELS if c in chosen)
        # Share of responses that mention the brand; a few domains barely register.
        self.base_visibility = 0.5 + 55.0 * rnd.unit(did, "visibility") ** 1.3
        self.base_citability = 0.5 + 30.0 * rnd.unit(did, "citability")
        self.channel_factor = {
            c: (0.0 if rnd.unit(did, "silent", c) < 0.08 else rnd.between(0.2, 1.8, did, "ch", c))
            for c in self.channels
        }
        # Channels whose answers carry no position data (null avg_position, visibility > 0;
        # docs/api-notes.md, Reading: visibility in /brand-rankings and null positions).
        self.positionless = {c for c in self.channels if rnd.unit(did, "positionless", c) < 0.2}
        self.competitors = self._make_competitors(account)
        self.rivals = [c.name for c in self.competitors]
        prompts = [self._make_prompt(account, i) for i in range(self._prompt_count(account))]
        self.set_prompts(prompts)
        self.pages = self._make_pages(account)

    # --- construction -----------------------------------------------------------------------

    def _prompt_count(self, account: "Account") -> int:
        low, high = account.prompt_bounds
        return account.random.integer(low, high, self.info.id, "prompt-count")

    def _since_creation(self, account: "Account", *parts, future_share: float, ahead_days: int):
        """A moment after the domain's creation: mostly before the anchor, sometimes after it."""
        rnd, anchor = account.random, account.anchor
        if rnd.unit(*parts, "future") < future_share:
            return anchor + timedelta(seconds=rnd.between(0, ahead_days * 86400, *parts, "ahead"))
        span = (anchor - self.info.created_at).total_seconds()
        return self.info.created_at + timedelta(seconds=span * rnd.unit(*parts, "past"))

    def _make_prompt(self, account: "Account", index, created_at: Optional[datetime] = None):
        rnd, did = account.random, self.info.id
        pid = rnd.uuid(did, "prompt", index)
        if created_at is None:
            created_at = self._since_creation(
                account, pid, "created", future_share=0.12, ahead_days=30
            )
        text = self.fill(vocab.PROMPT_TEMPLATES, rnd.draws(pid, "text"), created_at.year)
        volume_rank = int(len(SEARCH_VOLUMES) * rnd.unit(pid, "volume") ** 2)
        return Prompt(pid, text, SEARCH_VOLUMES[volume_rank], created_at)

    def _make_competitors(self, account: "Account") -> List[Competitor]:
        rnd, did = account.random, self.info.id
        low, high = account.competitor_bounds
        result, websites = [], {self.info.website}
        for i in range(rnd.integer(low, high, did, "competitor-count")):
            cid = rnd.uuid(did, "competitor", i)
            stem = rnd.pick(vocab.COMPETITOR_STEMS, cid, "stem")
            tail = rnd.pick(vocab.COMPETITOR_TAILS, cid, "tail")
            website = stem + tail + rnd.pick(vocab.TLDS, cid, "tld")
            if website in websites:
                website = f"{stem}{tail}{i}.com"
            websites.add(website)
            name = website if rnd.unit(cid, "name-style") < 0.5 else (stem + tail).capitalize()
            added_at = self._since_creation(account, cid, "added", future_share=0.2, ahead_days=45)
            strength = 1.4 * rnd.unit(cid, "strength") ** 1.5
            result.append(Competitor(cid, name, website, added_at, strength))
        return result

    def _make_pages(self, account: "Account") -> List[CitedPage]:
        rnd, did = account.random, self.info.id
        hosts = [("brand", self.info.website)] * rnd.integer(4, 10, did, "own-pages")
        for comp in self.competitors:
            hosts += [("competitor", comp.website)] * rnd.integer(1, 3, comp.id, "pages")
        for i in range(rnd.integer(15, 40, did, "third-party-pages")):
            hosts.append(("third_party", rnd.pick(vocab.THIRD_PARTY_HOSTS, did, "tp-host", i)))
        pages, urls = [], set()
        for i, (owner, host) in enumerate(hosts):
            path = rnd.pick(vocab.OWN_PAGE_PATHS[1:] if i else vocab.OWN_PAGE_PATHS, did, "path", i)
            slug = rnd.pick(vocab.SLUG_WORDS, did, "slug", i)
            url = host + path.format(slug=slug)
            if url in urls:
                url = f"{host}/{slug}-{i}"
            urls.add(url)
            title = rnd.pick(vocab.TITLE_TEMPLATES, did, "title", i).format(
                n=rnd.integer(5, 20, did, "n", i),
                Product=self.product.title(),
                host=host,
                year=account.anchor.year,
            )
            slugs = [s for s in CITATION_MODEL_SLUGS if rnd.unit(url, "model", s) < 0.4]
            first_seen = self._since_creation(
                account, did, url, "first-seen", future_share=0.05, ahead_days=30
            )
            pages.append(
                CitedPage(
                    url=url,
                    host=host,
                    page_type=rnd.pick(vocab.PAGE_TYPES, url, "type"),
                    page_title=title,
                    owner=owner,
                    weight=0.05 + rnd.unit(url, "weight") ** 3,  # a few pages get most citations
                    first_seen=first_seen,
                    models=tuple(slugs) or (rnd.pick(CITATION_MODEL_SLUGS, url, "only-model"),),
                )
            )
        return pages

    def fill(self, templates: Sequence[str], draws: Draws, year: int) -> str:
        """A prompt or fan-out query in this domain's market (uses draw slots 0-2)."""
        return draws.pick(templates, 0).format(
            product=self.product,
            alias=draws.pick(self.aliases, 1),
            brand=self.info.brand,
            rival=draws.pick(self.rivals, 2) if self.rivals else "the market leader",
            year=year,
        )

    # --- prompts (mutable: add_prompts) -----------------------------------------------------

    def set_prompts(self, prompts: List[Prompt]) -> None:
        ordered = sorted(prompts, key=lambda p: (p.created_at, p.id))
        # Swapped in one assignment each so readers on other threads see a consistent pair
        # (readers take `self.prompt_state` once).
        self.prompt_state = (tuple(ordered), tuple(p.created_at for p in ordered))
        self.prompt_version = getattr(self, "prompt_version", -1) + 1

    def visible_prompts(self, now: datetime) -> Tuple[Prompt, ...]:
        """Prompts created at or before ``now``, oldest first."""
        prompts, created = self.prompt_state
        return prompts[: bisect.bisect_right(created, now)]


class Account:
    """A deterministic synthetic AIclicks account.

    ``domains`` is the number of domains; ``prompts`` and ``competitors`` are (min, max) per
    domain; ``fanout_rate`` the chance that a prompt produces a batch of fan-out emissions on a
    given day. ``anchor`` is the instant the history is built around.
    """

    def __init__(
        self,
        seed: int = 1,
        domains: int = 3,
        prompts: Tuple[int, int] = (20, 200),
        competitors: Tuple[int, int] = (2, 6),
        fanout_rate: float = 0.2,
        anchor: Union[datetime, str] = DEFAULT_ANCHOR,
    ):
        self.seed = seed
        self.random = HashRandom(seed)
        self.anchor = parse_instant(anchor)
        self.prompt_bounds = tuple(prompts)
        self.competitor_bounds = tuple(competitors)
        self.fanout_rate = fanout_rate
        self._infos = self._make_domains(domains)
        self._info_by_id = {info.id: info for info in self._infos}
        self._models: Dict[str, DomainModel] = {}
        self._added_prompts: Dict[str, int] = {}
        self._fanout_cache: "OrderedDict[tuple, dict]" = OrderedDict()
        self._lock = threading.RLock()

    window_dates = staticmethod(window_dates)
    snap_days = staticmethod(snap_days)

    def _make_domains(self, count: int) -> List[DomainInfo]:
        rnd, infos, names = self.random, [], set()
        for i in range(count):
            did = rnd.uuid("domain", i)
            brand = rnd.pick(vocab.BRAND_STEMS, did, "brand")
            name = brand + rnd.pick(vocab.BRAND_SUFFIXES, did, "suffix")
            if name in names:
                name = f"{name} {i}"
            names.add(name)
            website = "".join(ch for ch in name.lower().replace(" ", "-") if ch.isalnum() or ch == "-")
            age = timedelta(days=rnd.between(30, 700, did, "age"))
            infos.append(DomainInfo(did, name, brand, website + ".com", self.anchor - age))
        return infos

    def _model(self, domain_id: str) -> DomainModel:
        model = self._models.get(domain_id)
        if model is None:
            with self._lock:
                model = self._models.get(domain_id)
                if model is None:
                    model = self._models[domain_id] = DomainModel(self._info_by_id[domain_id], self)
        return model

    # --- identity ---------------------------------------------------------------------------

    def domain_ids(self) -> List[str]:
        """Every domain id in account order (also the order of the restricted key's half)."""
        return [info.id for info in self._infos]

    def has_domain(self, domain_id: str) -> bool:
        return domain_id in self._info_by_id

    def domain_info(self, domain_id: str) -> DomainInfo:
        return self._info_by_id[domain_id]

    def channels(self, domain_id: str) -> Tuple[str, ...]:
        return self._model(domain_id).channels

    # --- listings ---------------------------------------------------------------------------

    def domains(self, now: datetime) -> List[dict]:
        return [info.item() for info in self._infos if info.created_at <= now]

    def prompts(self, domain_id: str, now: datetime) -> List[dict]:
        """Visible prompts, newest ``created_at`` first (docs/api-notes.md, Endpoint: /prompts)."""
        return [p.item() for p in reversed(self._model(domain_id).visible_prompts(now))]

    def add_prompts(self, domain_id: str, n: int, now: datetime) -> List[dict]:
        """Add ``n`` brand-new prompts created at ``now`` (ids deterministic per domain)."""
        with self._lock:
            model = self._model(domain_id)
            first = self._added_prompts.get(domain_id, 0)
            self._added_prompts[domain_id] = first + n
            new = [model._make_prompt(self, f"added-{first + i}", now) for i in range(n)]
            model.set_prompts(list(model.prompt_state[0]) + new)
        return [p.item() for p in new]

    def churn_prompts(self, domain_id: str, now: datetime) -> Tuple[dict, dict]:
        """One prompt added (the newest) and the oldest visible one removed: the list changes,
        its length does not. Returns (added, removed)."""
        with self._lock:
            model = self._model(domain_id)
            removed = model.visible_prompts(now)[0]
            (added,) = self.add_prompts(domain_id, 1, now)
            model.set_prompts([p for p in model.prompt_state[0] if p.id != removed.id])
        return added, removed.item()

    # --- daily counts -----------------------------------------------------------------------

    def _final_counts(self, model: DomainModel, day: date) -> DayCounts:
        _, created = model.prompt_state
        prompts_live = bisect.bisect_left(created, day_start(day + timedelta(days=1)))
        draws = self.random.draws(model.info.id, day, "counts")
        if (
            day < model.info.created_at.date()
            or not prompts_live
            or draws.unit(0) < 0.07  # the analyses did not run that day
        ):
            return NO_RESPONSES
        responses = max(1, round(prompts_live * len(model.channels) * (0.6 + 0.4 * draws.unit(1))))
        visibility = model.base_visibility / 100 * (0.5 + draws.unit(2))
        citations_total = round(responses * (0.8 + 2.2 * draws.unit(3)))
        citability = model.base_citability / 100 * (0.3 + 1.3 * draws.unit(4))
        return DayCounts(
            responses=responses,
            mentioned=min(responses, round(responses * visibility)),
            citations_total=citations_total,
            citations_brand=min(citations_total, round(citations_total * citability)),
        )

    def day_counts(self, domain_id: str, day: date, now: datetime) -> DayCounts:
        """The counts of ``day`` as the API reports them at ``now``."""
        return self._observed(self._model(domain_id), day, now)

    def _observed(self, model: DomainModel, day: date, now: datetime) -> DayCounts:
        """Final counts from age 2 on. Before that they are still coming in: today's are partial
        (they grow with the time of day), yesterday's still miss a few late responses; so the
        value of a day seen today differs from the one seen tomorrow, and then never changes."""
        age = (now.date() - day).days
        final = self._final_counts(model, day)
        if age >= PROVISIONAL_DAYS or final is NO_RESPONSES:
            return final
        draws = self.random.draws(model.info.id, day, age, "provisional")
        day_share = (now - day_start(now.date())).total_seconds() / 86400
        seen = {}
        for slot, name in enumerate(("responses", "mentioned", "citations_total", "citations_brand")):
            count, u = getattr(final, name), draws.unit(slot)
            if not count:
                seen[name] = 0
            elif age == 1:
                seen[name] = count - max(1, round(count * (0.03 + 0.12 * u)))
            else:
                seen[name] = int(count * day_share * (0.85 + 0.1 * u))
        seen["mentioned"] = min(seen["mentioned"], seen["responses"])
        seen["citations_brand"] = min(seen["citations_brand"], seen["citations_total"])
        return DayCounts(**seen)

    def _window_counts(self, model: DomainModel, days: int, now: datetime) -> List[DayCounts]:
        return [self._observed(model, day, now) for day in window_dates(days, now)]

    # --- time series ------------------------------------------------------------------------

    def series(self, metric: str, domain_id: str, days: int, now: datetime) -> List[dict]:
        """[{date, value}] oldest first.

        Visibility and citability are dense (a day without responses is present with 0, as
        documented for visibility). Mentions and citations are SPARSE: a day without responses
        has no row at all (the mentions docs say "one row per day with responses"; missing rows are
        the harder case for a client, which must not invent zeros). A day with responses but
        no brand mention still has a 0 row. (docs/api-notes.md, Reading: time-series density)
        """
        numerator, denominator = SERIES_DEFINITIONS[metric]
        model = self._model(domain_id)
        items = []
        for day in window_dates(days, now):
            counts = self._observed(model, day, now)
            if denominator is not None:
                value = percent(getattr(counts, numerator), getattr(counts, denominator))
            elif counts.responses:
                value = getattr(counts, numerator)
            else:
                continue
            items.append({"date": day.isoformat(), "value": value})
        return items

    # --- window aggregates ------------------------------------------------------------------

    def brand_rankings(self, domain_id: str, days: int, now: datetime) -> List[dict]:
        """Own brand first, then the dedicated competitors (added by ``now``) by mentions."""
        model, rnd = self._model(domain_id), self.random
        window = (now.date(), days)  # aggregates vary with the window, not with each request
        counts = self._window_counts(model, days, now)
        responses = sum(c.responses for c in counts)
        total_prompts = len(model.visible_prompts(now))
        entities = [("brand", model.info.name, None, True, sum(c.mentioned for c in counts))]
        for comp in model.competitors:
            if comp.added_at <= now:
                rate = model.base_visibility / 100 * comp.strength
                mentions = round(responses * rate * rnd.between(0.8, 1.2, comp.id, *window))
                entities.append((comp.id, comp.name, comp.website, False, mentions))
        brand, competitors = entities[0], entities[1:]
        competitors.sort(key=lambda e: (-e[4], e[1]))
        all_mentions = sum(e[4] for e in entities)
        items = []
        for entity_id, name, website, is_brand, mentions in [brand] + competitors:
            sov = round(100.0 * mentions / all_mentions, 2) if all_mentions else 0
            spread = 1 - math.exp(-mentions / max(1, total_prompts) / 3)
            position = rnd.between(1.0, 8.0, domain_id, entity_id, "position", *window)
            items.append(
                {
                    "id": entity_id,
                    "name": name,
                    "website": website,
                    "is_brand": is_brand,
                    "mentions": mentions,
                    "visibility": sov,  # equals sov, as in the docs' example
                    "sov": sov,
                    "avg_position": round(position, 1) if mentions else None,
                    "prompts_mentioned": (
                        max(1, min(total_prompts, mentions, round(total_prompts * spread)))
                        if mentions
                        else 0
                    ),
                    "total_prompts": total_prompts,
                }
            )
        return items

    def model_leaderboard(self, domain_id: str, days: int, now: datetime) -> List[dict]:
        """One row per channel of the domain, by visibility descending."""
        model, rnd = self._model(domain_id), self.random
        counts = self._window_counts(model, days, now)
        responses = sum(c.responses for c in counts)
        overall = sum(c.mentioned for c in counts) / responses if responses else 0.0
        rows = []
        for channel in model.channels:
            jitter = rnd.between(0.9, 1.1, domain_id, channel, now.date(), days)
            share = min(1.0, overall * model.channel_factor[channel] * jitter)
            visibility = percent(round(share * 10000), 10000)
            position = None
            if visibility and channel not in model.positionless:
                position = round(rnd.between(1.0, 8.0, domain_id, channel, now.date(), days), 2)
            rows.append({"model": channel, "visibility": visibility, "avg_position": position})
        rows.sort(key=lambda r: (-r["visibility"], CHANNELS.index(r["model"])))
        return rows

    def citations(self, domain_id: str, days: int, now: datetime) -> List[dict]:
        """One row per URL cited in the window, by frequency descending.

        The window's brand citation entries are spread over the brand's own pages, the other
        entries over competitor and third-party pages. `first_seen` is all-time and may precede
        the window (the harder reading; a client must not treat it as a window bound:
        docs/api-notes.md, Reading: citations fields).
        """
        model, rnd = self._model(domain_id), self.random
        counts = self._window_counts(model, days, now)
        brand_total = sum(c.citations_brand for c in counts)
        other_total = sum(c.citations_total for c in counts) - brand_total
        total_prompts = len(model.visible_prompts(now))
        window_start, today = now.date() - timedelta(days=days - 1), now.date()
        pages = [p for p in model.pages if p.first_seen <= now]
        items = []
        for share_of, group in (
            (brand_total, [p for p in pages if p.owner == "brand"]),
            (other_total, [p for p in pages if p.owner != "brand"]),
        ):
            weights = sum(p.weight for p in group)
            for page in group:
                key = (page.url, today, days)
                frequency = round(share_of * page.weight / weights * rnd.between(0.8, 1.2, *key))
                if frequency < 1:
                    continue
                last_day = max(window_start, today - timedelta(days=rnd.integer(0, 2, *key, "last")))
                last_seen = day_start(last_day) + timedelta(
                    seconds=rnd.between(0, 86400, *key, "last-time")
                )
                last_seen = max(page.first_seen, min(now, last_seen))
                items.append(
                    {
                        "url": page.url,
                        "domain": page.host,
                        "page_type": page.page_type,
                        "page_title": page.page_title,
                        "frequency": frequency,
                        "mentions": frequency + round(frequency * rnd.between(0, 0.8, *key, "m")),
                        "prompt_count": max(
                            1, min(total_prompts, round(frequency * rnd.between(0.15, 0.6, *key, "p")))
                        ),
                        "models": list(page.models),
                        "first_seen": iso_us(page.first_seen),
                        "last_seen": iso_us(last_seen),
                    }
                )
        items.sort(key=lambda item: (-item["frequency"], item["url"]))
        return items

    # --- fan-out ----------------------------------------------------------------------------

    def fanout(self, domain_id: str, days: int, now: datetime, model: str = "all") -> List[dict]:
        """Prompt groups with their fan-out emissions inside the window and not after ``now``.

        An emission belongs to one day and one batch time; a prompt emits a batch on a day with
        probability ``fanout_rate``. ``model`` ("all" or a channel display name) filters the
        emissions; prompts left without emissions are dropped. Order (not documented;
        docs/api-notes.md, Reading: ordering):
        groups by their most recent emission, newest first, so new emissions reorder pages like
        an activity feed; emissions inside a group newest first.
        """
        domain = self._model(domain_id)
        dates = window_dates(days, now)
        today = dates[-1]
        by_prompt = self._past_emissions(domain, dates[0], today, model)
        for prompt, emissions in self._emissions(domain, [today], model, now).items():
            by_prompt[prompt] = emissions + by_prompt.get(prompt, [])
        groups = sorted(
            by_prompt.items(), key=lambda g: (g[1][0][0], g[0].id), reverse=True
        )
        return [
            {"id": p.id, "text": p.text, "fanout_queries": [e for _, e in emissions]}
            for p, emissions in groups
        ]

    def _past_emissions(self, domain: DomainModel, first: date, today: date, model: str):
        """Emissions of the window's complete days (a copy). They cannot change during the day,
        so the pages of one sync share one computation."""
        key = (domain.info.id, first, today, model, domain.prompt_version)
        with self._lock:
            cached = self._fanout_cache.get(key)
            if cached is not None:
                self._fanout_cache.move_to_end(key)
        if cached is None:
            dates = [first + timedelta(days=i) for i in range((today - first).days)]
            cached = self._emissions(domain, dates, model, day_start(today))
            with self._lock:
                self._fanout_cache[key] = cached
                while len(self._fanout_cache) > FANOUT_CACHE_SIZE:
                    self._fanout_cache.popitem(last=False)
        return dict(cached)

    def _emissions(self, domain: DomainModel, dates: List[date], model: str, until: datetime):
        """{prompt: [(batch_at, emission), ...] newest first} for ``dates``, up to ``until``."""
        result = {}
        for prompt in domain.visible_prompts(until):
            per_prompt = self.random.scoped(prompt.id)
            emissions = []
            for day in dates[bisect.bisect_left(dates, prompt.created_at.date()) :]:
                batch = per_prompt.draws(day)
                if batch.unit(0) >= self.fanout_rate:
                    continue
                batch_at = day_start(day) + timedelta(seconds=86400 * batch.unit(1))
                if batch_at > until or batch_at < prompt.created_at:
                    continue
                for k in range(1 + int(3 * batch.unit(2))):
                    emission = per_prompt.draws(day, k)
                    channel = emission.pick(domain.channels, 3)
                    if model != "all" and channel != model:
                        continue
                    query = domain.fill(vocab.FANOUT_TEMPLATES, emission, day.year)
                    emissions.append(
                        (batch_at, {"id": emission.uuid(), "query": query, "model": channel})
                    )
            if emissions:
                emissions.sort(key=lambda e: e[0], reverse=True)
                result[prompt] = emissions
        return result
