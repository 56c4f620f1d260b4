"""The demo's events written as Mixpanel raw-export JSON lines, with the dirt real exports have.

Records
-------
``{"event": ..., "properties": {"time", "distinct_id", <identity props>, <device/location props>,
"$insert_id", "mp_processing_time_ms", <super props>, <event props>}}``. ``time`` is true UTC epoch seconds,
except (a) a random ``ms_share`` of records carry epoch *milliseconds* (13 digits; anything >= 1e11 is ms) and
(b) with ``time_in_project_timezone=True`` every ``time`` encodes the project's local wall clock as if it were
UTC (old Mixpanel projects). ``mp_processing_time_ms`` is always true UTC milliseconds, >= the event's true
time (seconds of delay; hours for ~8% of mobile events sent after being offline). A day's records are ordered
by arrival (``mp_processing_time_ms``), not by event time.

Identity: 90% of users use the *simplified* ID merge: anonymous events have ``distinct_id = "$device:<device_id>"``
and ``$device_id``; "Sign Up" carries ``$device_id`` and ``$user_id`` (the merge); afterwards
``distinct_id = user_id`` with ``$user_id`` (plus ``$device_id`` on mobile). 10% use the *original* ID merge:
anonymous events have ``distinct_id = <device_id>`` (raw, no prefix, no ``$device_id``), and at sign-up either
an ``$identify`` event (``distinct_id`` = user id, ``$anon_distinct_id`` = the device distinct_id,
``$identified_id`` = user id; ~80% of them) or a ``$create_alias`` event (``distinct_id`` = the device distinct_id,
``alias`` = user id; ~20%), then events under the user id with no ``$user_id``/``$device_id``.
``utm_source``/``utm_medium``/``utm_campaign`` appear on anonymous events and on "Sign Up" (not for direct
users); web users carry ``$initial_referring_domain`` ("$direct" for direct) on every event.

Dirt (all per day, counted in the summary and in truth.json)
-------------------------------------------------------------
* duplicates: ~``duplicate_share`` of records get one extra copy with the same event, distinct_id, time and
  $insert_id. 80% are byte-identical copies in the same file; 20% are *late re-sends* placed in the NEXT day's
  file (same time => their time falls on the previous day; their ``mp_processing_time_ms`` is later, so the line
  is not byte-identical). On the last day all copies stay in-day.
* malformed lines (``malformed_per_day`` per day, kinds cycled from a random start): ``truncated`` (a record
  cut short, invalid JSON), ``split`` (one record written over two physical lines; concatenating the two lines
  without the newline gives the original valid JSON), ``missing_distinct_id`` (valid JSON without
  ``properties.distinct_id``), ``string_time`` (``"time": "yesterday"``). Malformed records replace ordinary
  activity events (never sign-ups, purchases, goal, cancellation or identity events), so the truth stays
  observable from the well-formed records. (The export layout's ``terminated early`` line: see writer.py.)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import numpy as np
import polars as pl

from growth_pipeline.lib.demo.apps import CUISINES, CustomerApp, json_literal
from growth_pipeline.lib.demo.population import FD_DOMAINS, PP_DOMAINS
from growth_pipeline.lib.demo.simulate import N_KINDS, DayEvents
from growth_pipeline.lib.demo.spec import FAVOURITE_CATEGORY_SHARE, LATE_DUPLICATE_SHARE, DemoSpec

MALFORMED_KINDS = ("truncated", "split", "missing_distinct_id", "string_time")
N_MEALS = 40


def user_fragments(app: CustomerApp, p: dict, n: int) -> pl.Series:
    """Per (user, kind) the identity + device + super-property fragment, flattened as kind * total + u.

    Built column-wise in polars. Every value comes from a fixed vocabulary or is hex/digits, so no JSON escaping
    is needed (checked by population.check_vocabularies)."""
    total = len(p["platform"])
    pp = app.name == "powerplay"
    plat = p["platform_code"]
    h = np.array([int(d[:8], 16) for d in p["device_id"]], dtype=np.int64)
    versions = np.array(["5.12.0", "5.13.1", "5.14.2", "5.14.3"] if pp else ["3.2.0", "3.3.1"])
    browsers = np.array(["Chrome", "Chrome", "Chrome", "Edge", "Safari", "Firefox"])
    domains = PP_DOMAINS if pp else FD_DOMAINS
    ch = p["channel"].astype(str)
    medium = np.where(ch == "referral", "referral", np.where(np.isin(ch, ["google", "facebook"]), "cpc", "social"))
    cols = pl.DataFrame(
        {
            "anon": p["anon_distinct_id"].astype(str),
            "dev": p["device_id"].astype(str),
            "uid": p["user_id"].astype(str),
            "merge": p["id_merge_code"].astype(np.int64),
            "web": plat == 2,
            "user": np.arange(total) < n,
            "os": p["os"].astype(str),
            "city": p["city"].astype(str),
            "region": p["region"].astype(str),
            "lib": np.array(["android", "iphone", "web"])[plat],
            "ver": versions[h % len(versions)],
            "browser": browsers[h % len(browsers)],
            "domain": np.array([domains[c] for c in ch]),
            "ch": ch,
            "medium": medium,
            "campaign": p["campaign"].astype(str),
            "sup": (
                np.char.add(
                    np.char.add(
                        np.char.add(
                            np.char.add(np.char.add(',"company_size":', p["company_size"].astype(str)), ',"role":"'),
                            p["role"].astype(str),
                        ),
                        '","project_type":"',
                    ),
                    p["project_type"].astype(str),
                )
                if pp
                else np.full(total, '"')
            ),
        }
    )
    c = pl.col
    lit = pl.lit
    q = lit('"')
    devp = pl.concat_str(
        [
            lit(',"$os":"'),
            c("os"),
            lit('","$city":"'),
            c("city"),
            lit('","$region":"'),
            c("region"),
            lit(f'","mp_country_code":"{"IN" if pp else "US"}","mp_lib":"'),
            c("lib"),
            q,
            pl.when(c("web"))
            .then(
                pl.concat_str(
                    [lit(',"$browser":"'), c("browser"), lit('","$initial_referring_domain":"'), c("domain"), q]
                )
            )
            .otherwise(pl.concat_str([lit(',"$app_version_string":"'), c("ver"), q])),
        ]
    )
    utm = (
        pl.when(c("ch") == "direct")
        .then(lit(""))
        .otherwise(
            pl.concat_str(
                [
                    lit(',"utm_source":"'),
                    c("ch"),
                    lit('","utm_medium":"'),
                    c("medium"),
                    lit('","utm_campaign":"'),
                    c("campaign"),
                    q,
                ]
            )
        )
    )
    sup = pl.concat_str([c("sup"), q]) if pp else lit("")
    simplified = c("merge") == 0
    did_anon = pl.concat_str([lit('"distinct_id":"'), c("anon"), q])
    did_user = pl.concat_str([lit('"distinct_id":"'), c("uid"), q])
    k_anon = pl.concat_str(
        [
            did_anon,
            pl.when(simplified).then(pl.concat_str([lit(',"$device_id":"'), c("dev"), q])).otherwise(lit("")),
            devp,
            utm,
        ]
    )
    k_sign = pl.concat_str(
        [
            did_user,
            pl.when(simplified)
            .then(pl.concat_str([lit(',"$device_id":"'), c("dev"), lit('","$user_id":"'), c("uid"), q]))
            .otherwise(lit("")),
            devp,
            sup,
            utm,
        ]
    )
    k_ident = pl.concat_str(
        [
            did_user,
            pl.when(simplified)
            .then(
                pl.concat_str(
                    [
                        lit(',"$user_id":"'),
                        c("uid"),
                        q,
                        pl.when(c("web")).then(lit("")).otherwise(pl.concat_str([lit(',"$device_id":"'), c("dev"), q])),
                    ]
                )
            )
            .otherwise(lit("")),
            devp,
            sup,
        ]
    )
    k_identify = pl.concat_str(
        [did_user, lit(',"$anon_distinct_id":"'), c("anon"), lit('","$identified_id":"'), c("uid"), q, devp]
    )
    k_alias = pl.concat_str([did_anon, lit(',"alias":"'), c("uid"), q, devp])
    frags = cols.select(
        k_anon.alias("k0"),
        pl.when(c("user")).then(k_sign).otherwise(lit("")).alias("k1"),
        pl.when(c("user")).then(k_ident).otherwise(lit("")).alias("k2"),
        pl.when(c("user") & (c("merge") == 1)).then(k_identify).otherwise(lit("")).alias("k3"),
        pl.when(c("user") & (c("merge") == 2)).then(k_alias).otherwise(lit("")).alias("k4"),
    )
    return pl.concat([frags[f"k{k}"] for k in range(N_KINDS)]).rechunk().alias("uf")


@dataclass(frozen=True)
class EventFragments:
    """Flat table of event-property fragments (index 0 is ''): each event's variants at ``offset[ev]``
    (``count[ev]`` of them), then the cuisine/meal fragments from ``cuisine_off``."""

    series: pl.Series
    offset: np.ndarray
    count: np.ndarray
    cuisine_off: int

    @classmethod
    def of(cls, app: CustomerApp) -> EventFragments:
        table = [""]
        offset = np.zeros(len(app.events), dtype=np.int64)
        count = np.zeros(len(app.events), dtype=np.int64)
        for k, name in enumerate(app.events):
            frags = app.event_props.get(name, [])
            if frags:
                offset[k] = len(table)
                count[k] = len(frags)
                table.extend(frags)
        cuisine_off = len(table)
        for ci, cu in enumerate(CUISINES):
            for m in range(N_MEALS):
                table.append(f',"cuisine":"{cu}","meal_id":{(ci + 1) * 1000 + m + 1}')
        return cls(pl.Series("ef", table, dtype=pl.String), offset, count, cuisine_off)

    def pick(self, app: CustomerApp, e: DayEvents, fav: np.ndarray) -> np.ndarray:
        """Each event's fragment index, chosen by its variant draws: a uniform variant; for cuisine-tagged
        events the user's favourite cuisine (else a uniform one) and a meal; for a powerplay purchase the plan
        that its amount buys."""
        fr, ev, off, cnt = e.variant_draws, e.ev, self.offset, self.count
        frag = np.where(cnt[ev] > 0, off[ev] + np.floor(fr[0] * cnt[ev]).astype(np.int64), 0)
        if app.cuisine_events:
            cuisine_ev = np.zeros(len(app.events), dtype=bool)
            for name in app.cuisine_events:
                cuisine_ev[app.code(name)] = True
            cz = np.where(fr[1] < FAVOURITE_CATEGORY_SHARE, fav[e.u], np.floor(fr[2] * 7).astype(np.int64) % 7)
            meal = np.floor((fr[2] * 7 % 1) * N_MEALS).astype(np.int64)
            frag = np.where(cuisine_ev[ev], self.cuisine_off + cz * N_MEALS + meal, frag)
        if app.name == "powerplay":
            ev_conv = app.code(app.conversion_event)
            plan = np.where(e.amt < 3000, 0, np.where(e.amt < 15000, 1, 2))
            frag = np.where(ev == ev_conv, off[ev_conv] + plan, frag)
        return frag


def corrupt(kind: str, line: str, rng: np.random.Generator) -> str:
    """``line`` made malformed in the way ``kind`` (one of ``MALFORMED_KINDS``) names."""
    if kind == "truncated":
        cut = int(len(line) * (0.3 + 0.6 * rng.random()))
        return line[: max(1, min(cut, len(line) - 2))]
    if kind == "split":
        commas = [m.start() for m in re.finditer(",", line)]
        k = commas[len(commas) // 2] + 1 if commas else len(line) // 2
        return line[:k] + "\n" + line[k:]
    rec = json.loads(line)
    if kind == "missing_distinct_id":
        rec["properties"].pop("distinct_id", None)
    elif kind == "string_time":
        rec["properties"]["time"] = "yesterday"
    return json.dumps(rec, ensure_ascii=False, separators=(",", ":"))


class RecordFormatter:
    """Turns each day's events into that day's lines (call :meth:`format_day` for days 0, 1, 2, ... in order:
    late re-sends are carried into the next day), drawing only on the formatting stream ``rng``. Counts the
    well-formed ``events``, ``duplicates``, ``late_duplicates`` and ``malformed`` lines by kind."""

    def __init__(
        self,
        app: CustomerApp,
        spec: DemoSpec,
        p: dict,
        midnights: np.ndarray,
        offsets: list[tuple[int, int, int]],
        rng: np.random.Generator,
    ):
        n = spec.n_users
        self.app, self.spec, self.midnights, self.offsets, self.rng = app, spec, midnights, offsets, rng
        self.day_len = np.diff(midnights).astype(np.float64)
        self.total = len(p["platform"])
        self.uf_series = user_fragments(app, p, n)
        self.fragments = EventFragments.of(app)
        self.head = pl.Series(
            "h", [f'{{"event":{json_literal(e)},"properties":{{"time":' for e in app.events], dtype=pl.String
        )
        self.is_mobile = np.asarray(p["platform_code"], dtype=np.int64) != 2
        self.fav = np.asarray(p.get("fav_code", np.zeros(self.total, dtype=np.int64)), dtype=np.int64)
        self.carry: pl.DataFrame | None = None  # late re-sends for the next day: columns line, key
        self.events = self.duplicates = self.late_duplicates = 0
        self.malformed = {k: 0 for k in MALFORMED_KINDS}

    def format_day(self, d: int, e: DayEvents) -> pl.DataFrame:
        """Day ``d``'s lines (column ``line``) in arrival order: its records, their duplicates, its malformed
        lines and the previous day's late re-sends."""
        rng, spec, app = self.rng, self.spec, self.app
        frag = self.fragments.pick(app, e, self.fav)
        nr = len(e)
        self.events += nr
        t = self.midnights[d] + e.sec
        ms = rng.integers(0, 1000, nr)
        as_ms = rng.random(nr) < spec.ms_share
        delay = 800 + np.floor(rng.exponential(4000.0, nr)).astype(np.int64)
        offline = self.is_mobile[e.u] & (rng.random(nr) < 0.08)
        delay = delay + np.where(offline, np.floor(rng.exponential(3 * 3600e3, nr)).astype(np.int64), 0)
        ptime = t * 1000 + ms + delay
        if spec.time_in_project_timezone:
            o0, o1, tr = self.offsets[d]
            tw = t + np.where(t < tr, o0, o1)
        else:
            tw = t
        tstr = np.where(as_ms, tw * 1000 + ms, tw)
        iid_hex = rng.bytes(8 * nr).hex().encode("ascii")
        iid_raw = np.frombuffer(iid_hex, dtype="S16") if nr else np.zeros(0, dtype="S16")
        iid = pl.Series("iid", iid_raw).cast(pl.String)
        amount = pl.lit(f',"{app.amount_key}":')
        a = pl.col("a")
        if app.amount_key == "price":  # cents
            amount_text = pl.concat_str(
                [amount, (a // 100).cast(pl.String), pl.lit("."), (a % 100).cast(pl.String).str.zfill(2)]
            )
        else:
            amount_text = pl.concat_str([amount, a.cast(pl.String)])

        def assemble(sel: np.ndarray | slice, ptimes: np.ndarray) -> pl.Series:
            dyn = (
                pl.DataFrame({"a": e.amt[sel]})
                .select(pl.when(a >= 0).then(amount_text).otherwise(pl.lit("")))
                .to_series()
            )
            df = pl.DataFrame(
                {
                    "h": self.head.gather(e.ev[sel]),
                    "t": tstr[sel],
                    "uf": self.uf_series.gather(e.kind[sel] * self.total + e.u[sel]),
                    "iid": iid.gather(np.arange(nr)[sel]),
                    "p": ptimes,
                    "ef": self.fragments.series.gather(frag[sel]),
                    "dyn": dyn,
                }
            )
            return df.select(
                pl.concat_str(
                    [
                        pl.col("h"),
                        pl.col("t").cast(pl.String),
                        pl.lit(","),
                        pl.col("uf"),
                        pl.lit(',"$insert_id":"'),
                        pl.col("iid"),
                        pl.lit('","mp_processing_time_ms":'),
                        pl.col("p").cast(pl.String),
                        pl.col("ef"),
                        pl.col("dyn"),
                        pl.lit("}}"),
                    ]
                ).alias("line")
            ).to_series()

        lines = assemble(slice(None), ptime)
        key = ptime.copy()

        # duplicates
        n_dup = int(rng.binomial(nr, spec.duplicate_share)) if nr else 0
        dup_idx = np.sort(rng.choice(nr, size=n_dup, replace=False)) if n_dup else np.zeros(0, dtype=np.int64)
        late = rng.random(n_dup) < LATE_DUPLICATE_SHARE if d < spec.days - 1 else np.zeros(n_dup, dtype=bool)
        in_day = dup_idx[~late]
        late_idx = dup_idx[late]
        extra_frames = [
            pl.DataFrame(
                {
                    "line": lines.gather(in_day),
                    "key": key[in_day] + 1 + np.floor(rng.exponential(60e3, len(in_day))).astype(np.int64),
                }
            )
        ]
        new_carry = None
        if len(late_idx):
            lp = self.midnights[d + 1] * 1000 + np.floor(rng.random(len(late_idx)) * self.day_len[d + 1] * 1000).astype(
                np.int64
            )
            lp = np.maximum(lp, ptime[late_idx] + 60_000)  # re-sent after the original arrived
            new_carry = pl.DataFrame({"line": assemble(late_idx, lp), "key": lp})
        self.duplicates += n_dup
        self.late_duplicates += len(late_idx)

        # malformed lines replace ordinary activity events that were not duplicated
        n_bad = spec.malformed_per_day
        if n_bad > 0 and nr:
            ok = e.act.copy()
            ok[dup_idx] = False
            cand = np.flatnonzero(ok)
            n_bad = min(n_bad, len(cand))
            victims = np.sort(rng.choice(cand, size=n_bad, replace=False))
            first_kind = int(rng.integers(0, len(MALFORMED_KINDS)))
            olds = lines.gather(victims).to_list()
            news = []
            for j, old in enumerate(olds):
                kd = MALFORMED_KINDS[(first_kind + j) % len(MALFORMED_KINDS)]
                news.append(corrupt(kd, old, rng))
                self.malformed[kd] += 1
            lines = lines.scatter(victims, pl.Series(news, dtype=pl.String))
            self.events -= n_bad
        frame = pl.concat(
            [pl.DataFrame({"line": lines, "key": key}), *extra_frames]
            + ([self.carry] if self.carry is not None else [])
        )
        self.carry = new_carry
        return frame.with_row_index("r").sort(["key", "r"])
