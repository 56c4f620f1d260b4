"""The hidden daily process of the demo population, simulated day by day into event rows (not yet JSON).

Days are calendar days of the project timezone, indexed from the user's sign-up day (day 0). Each user is
in state A (engaged), B (fading) or D (silent = churned). On every day k >= 1, in this order:

1. A -> B with probability ``churn_hazard``. If the user is a subscriber (converted, not cancelled) the
   subscription is cancelled on that day with probability ``cancel_probability`` ("Subscription
   Cancelled" is emitted if the user is still alive that day; no purchases afterwards).
2. B -> D with probability ``fade_exit_hazard`` (1.0 for "abrupt" churners, who go A -> D in one day;
   0.1 for gradual ones, whose fade lasts Geometric(0.1)-1 days, mean 9). D is absorbing: no event on the
   churn day or ever after (no returns). ``churn_time`` = local midnight starting the first silent day.
3. While alive (A or B), with m = 1 in A and m = ``fade_outcome_factor`` (0.3) in B:
   * not yet converted: converts with probability ``conversion_hazard * m`` (one purchase event);
   * converted before today and not cancelled: Poisson(``purchase_rate * m``) further purchases;
   * goal not yet reached: reaches it with probability ``goal_hazard * m`` (the first goal event);
   * Poisson(``sessions_per_day * weekday_factor * decay``) sessions, each an opening event plus
     Poisson(``events_per_session``) activity events; decay = 1 in A and 0.8**(days in B + 1) in B
     (the visible 1-2 week decline before gradual churn). A day with an outcome event has >= 1 session.
Day 0 (sign-up day) is in state A with no transitions; conversion and goal can happen after the sign-up.
Each purchase's value is ``mean_order_value * LogNormal(-s^2/2, s)`` (s = 0.35 powerplay, 0.3 foodie), so its
expectation is exactly ``mean_order_value``. ``activity_rate = sessions_per_day * (1 + events_per_session)``
(expected activity events per day in A; weekday factors average to 1). ``behaviour_change`` multiplies the
rate of one activity/session event from its start date (thinning, or extra copies when factor > 1; for the
goal event only its repeats after the goal); outcome events (sign-up, purchase, first goal, cancellation,
identity) are refused. It never touches the hazards, and the simulation draws are independent of it: the truth
and every file before the change date are byte-identical with or without it. ``outcome_change`` is concept drift:
from its start day on, one hazard of the users who often do one activity event is multiplied by a factor (see
``outcome_change_parameters``); it draws nothing, so every file before its start day is byte-identical too, and
truth.parquet carries the hazards after the change (``<hazard>_after_change``, ``outcome_change_date``).

Users may have anonymous visits 1-5 days before signing up; extra anonymous visitors (25% of ``n_users``) never
sign up. Legacy ID-merge users send an ``$identify`` or ``$create_alias`` event a second before signing up.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np

from growth_pipeline.lib.demo.apps import CustomerApp, normalised
from growth_pipeline.lib.demo.population import user_mixes
from growth_pipeline.lib.demo.spec import (
    FADE_ACTIVITY_DECAY,
    FADE_OUTCOME_FACTOR,
    GRADUAL_FADE_EXIT_HAZARD,
    GRADUAL_SHARE,
    OUTCOME_HAZARDS,
    DemoSpec,
    OutcomeChange,
)

# identity kind of a record: which identity properties it carries (see records.user_fragments)
KIND_ANON, KIND_SIGNUP, KIND_IDENT, KIND_IDENTIFY, KIND_ALIAS = range(5)
N_KINDS = 5


def _seg_arange(counts: np.ndarray) -> np.ndarray:
    """For groups of the given sizes, 0..size-1 within each group."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.cumsum(counts) - counts
    return np.arange(total, dtype=np.int64) - np.repeat(starts, counts)


def _session_offsets(rng: np.random.Generator, sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For the events of sessions of ``sizes`` events each: the event's position in its session and its seconds
    after the session start (exponential gaps, mean 50 s; the opening event at 0)."""
    pos = _seg_arange(sizes)
    gaps = rng.exponential(50.0, int(sizes.sum()))
    gaps[pos == 0] = 0.0
    offsets = np.cumsum(gaps)
    if len(sizes):
        offsets -= np.repeat(offsets[np.cumsum(sizes) - sizes], sizes)
    return pos, offsets


def _utc_offset(tz: ZoneInfo, ts: int) -> int:
    return int(datetime.fromtimestamp(ts, tz).utcoffset().total_seconds())


def day_grid(start: date, days: int, tz: ZoneInfo):
    """Local midnights (UTC epoch s) of days 0..days, and per day (offset0, offset1, transition epoch)."""
    mid = np.array(
        [
            int(datetime(d.year, d.month, d.day, tzinfo=tz).timestamp())
            for d in (start + timedelta(days=k) for k in range(days + 2))
        ],
        dtype=np.int64,
    )
    offs = []
    for k in range(days + 1):
        a, b = int(mid[k]), int(mid[k + 1])
        o0, o1 = _utc_offset(tz, a), _utc_offset(tz, b - 1)
        tr = b
        if o0 != o1:
            lo, hi = a, b - 1
            while hi - lo > 1:
                m = (lo + hi) // 2
                if _utc_offset(tz, m) == o0:
                    lo = m
                else:
                    hi = m
            tr = hi
        offs.append((o0, o1, tr))
    return mid, offs


def _pick(rng, n, names_probs, app: CustomerApp) -> np.ndarray:
    names, probs = names_probs
    codes = np.array([app.code(x) for x in names], dtype=np.int64)
    if len(codes) == 1:
        return np.full(n, codes[0], dtype=np.int64)
    return codes[rng.choice(len(codes), size=n, p=normalised(probs))]


def outcome_change_parameters(
    app: CustomerApp, par: dict[str, np.ndarray], mix_pre_cum: np.ndarray, oc: OutcomeChange
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The users an outcome change touches (expected daily count of ``oc.event`` before the goal at or above the
    population's median) and the daily parameters from its start day on (``oc.hazard`` multiplied by
    ``oc.factor`` for them, clipped to the hazard's usual bounds; everything else unchanged)."""
    k = app.activity.index(oc.event)
    share = np.diff(mix_pre_cum, axis=1, prepend=0.0)[:, k]
    rate = par["sessions_per_day"] * par["events_per_session"] * share
    segment = rate >= np.median(rate) if len(rate) else np.zeros(0, dtype=bool)
    lo, hi = OUTCOME_HAZARDS[oc.hazard]
    key = f"{oc.hazard}_hazard"
    after = dict(par)
    after[key] = np.where(segment, np.clip(par[key] * oc.factor, lo, hi), par[key])
    return segment, after


class _Rows:
    """Column arrays of one day's events, collected group by group."""

    __slots__ = ("u", "kind", "ev", "sec", "act", "amt")

    def __init__(self):
        self.u, self.kind, self.ev, self.sec, self.act, self.amt = [], [], [], [], [], []

    def add(self, u, kind, ev, sec, act, amt=None):
        n = len(u)
        if n == 0:
            return
        self.u.append(np.asarray(u, dtype=np.int64))
        self.kind.append(np.broadcast_to(np.asarray(kind, dtype=np.int64), (n,)).copy())
        self.ev.append(np.broadcast_to(np.asarray(ev, dtype=np.int64), (n,)).copy())
        self.sec.append(np.asarray(sec, dtype=np.float64))
        self.act.append(np.broadcast_to(np.asarray(act, dtype=bool), (n,)).copy())
        self.amt.append(np.full(n, -1, dtype=np.int64) if amt is None else np.asarray(amt, dtype=np.int64))

    def arrays(self):
        if not self.u:
            z = np.zeros(0, dtype=np.int64)
            return z, z, z, np.zeros(0), np.zeros(0, dtype=bool), z
        return (
            np.concatenate(self.u),
            np.concatenate(self.kind),
            np.concatenate(self.ev),
            np.concatenate(self.sec),
            np.concatenate(self.act),
            np.concatenate(self.amt),
        )


@dataclass
class DayEvents:
    """One local day's events, column-wise: user index, identity kind (``KIND_*``), event code, second within
    the day, ordinary activity/session event (the kind a behaviour change or a malformed line may touch),
    purchase amount (-1 for none; cents when the app's amount is a price), and three uniforms per event
    (shape (3, n)) that choose its property variant when the record is written."""

    u: np.ndarray
    kind: np.ndarray
    ev: np.ndarray
    sec: np.ndarray
    act: np.ndarray
    amt: np.ndarray
    variant_draws: np.ndarray

    def __len__(self) -> int:
        return len(self.u)


@dataclass
class _Today:
    new: np.ndarray  # signs up today
    alive: np.ndarray
    conv_now: np.ndarray
    n_purch: np.ndarray
    goal_now: np.ndarray
    cancel_emit: np.ndarray
    n_sess: np.ndarray


@dataclass
class _Sessions:
    users: np.ndarray  # alive users, in index order
    count: np.ndarray  # sessions of each of them today
    first: np.ndarray  # index of each one's first session in ``start``
    start: np.ndarray  # second of the day each session starts


class Simulation:
    """The population's hidden state, advanced one local day at a time by :meth:`simulate_day` (call it for
    days 0, 1, 2, ... in order). The realised times (``signup_t``, ``fade_day``, ``churn_day``, ``conv_t``,
    ``goal_t``, ``cancel_t``; -1 where it never happened) are what truth.parquet records."""

    def __init__(
        self,
        app: CustomerApp,
        spec: DemoSpec,
        p: dict,
        par: dict[str, np.ndarray],
        midnights: np.ndarray,
        *,
        rng_prof: np.random.Generator,
        rng_sim: np.random.Generator,
        rng_bc: np.random.Generator,
    ):
        n, days = spec.n_users, spec.days
        total = len(p["platform"])
        n_anon = total - n
        self.app, self.spec, self.par, self.n = app, spec, par, n
        self.rng, self.rng_bc = rng_sim, rng_bc
        self.midnights = midnights
        gradual = rng_prof.random(n) < GRADUAL_SHARE
        self.q_exit = np.where(gradual, GRADUAL_FADE_EXIT_HAZARD, 1.0)
        self.day_len = day_len = np.diff(midnights).astype(np.float64)
        weekday = np.array([(spec.start + timedelta(days=k)).weekday() for k in range(days + 1)])
        self.wday_f = wday_f = app.weekday_factors[weekday]

        # sign-up day (weekday-weighted) and second within the local day (diurnal) of users
        w = wday_f[:days] / wday_f[:days].sum()
        self.signup_day = signup_day = rng_prof.choice(days, size=n, p=w)
        hour = rng_prof.choice(24, size=n, p=app.hour_weights)
        signup_sec = np.floor((hour + rng_prof.random(n)) * day_len[signup_day] / 24.0).astype(np.int64)
        self.signup_sec = np.clip(signup_sec, 300, day_len[signup_day].astype(np.int64) - 600)
        # anonymous visits: users 0-2 visits 1-5 days before sign-up; anonymous-only visitors 1-3 visits
        visits = np.full((total, 3), -1, dtype=np.int64)
        nv = np.where(rng_prof.random(n) < 0.3, 1 + (rng_prof.random(n) < 0.35), 0)
        for j in range(2):
            back = rng_prof.integers(1, 6, n) + 2 * j
            visits[:n, j] = np.where(nv > j, signup_day - back, -1)
        first = rng_prof.integers(0, days, n_anon)
        visits[n:, 0] = first
        for j in (1, 2):
            more = rng_prof.random(n_anon) < (0.4 if j == 1 else 0.15)
            visits[n:, j] = np.where(more, first + rng_prof.integers(1, 8, n_anon) * j, -1)
        visits[visits >= days] = -1
        self.visits = visits

        self.mix_pre_cum, self.mix_post_cum = user_mixes(app, p, n)
        self.act_codes = np.array([app.code(a) for a in app.activity], dtype=np.int64)
        self.plat_code = np.asarray(p["platform_code"], dtype=np.int64)
        self.id_merge = np.asarray(p["id_merge_code"], dtype=np.int64)
        self.ev_sign, self.ev_identify = app.code("Sign Up"), app.code("$identify")
        self.ev_alias = app.code("$create_alias")
        self.ev_goal, self.ev_conv = app.code(app.goal_event), app.code(app.conversion_event)
        self.ev_cancel = app.code(app.cancel_event) if app.cancel_event else -1
        bc = spec.behaviour_change
        self.bc_code = app.code(bc.event) if bc is not None else -1
        self.bc_day = (bc.start - spec.start).days if bc is not None else 0
        self.oc_day, self.oc_segment, self.par_after = days + 1, np.zeros(n, dtype=bool), par
        oc = spec.outcome_change
        if oc is not None:
            self.oc_day = (oc.start - spec.start).days
            self.oc_segment, self.par_after = outcome_change_parameters(app, par, self.mix_pre_cum, oc)

        self.state = np.zeros(n, dtype=np.int8)  # 0 not signed up, 1 A, 2 B, 3 D
        self.age = np.zeros(n, dtype=np.int64)  # days spent fading
        self.converted = np.zeros(n, dtype=bool)
        self.cancelled = np.zeros(n, dtype=bool)
        self.goal = np.zeros(n, dtype=bool)
        self.fade_day = np.full(n, -1, dtype=np.int64)
        self.churn_day = np.full(n, -1, dtype=np.int64)
        self.conv_t = np.full(n, -1, dtype=np.int64)
        self.goal_t = np.full(n, -1, dtype=np.int64)
        self.cancel_t = np.full(n, -1, dtype=np.int64)
        self.signup_t = midnights[signup_day] + self.signup_sec

    def simulate_day(self, d: int) -> DayEvents:
        """Advance the state through local day ``d`` and return that day's events."""
        today = self._advance(d)
        rows = _Rows()
        sessions = self._user_sessions(d, today, rows)
        self._signup_extras(today.new, rows)
        self._anonymous_visits(d, rows)
        self._outcome_events(d, today, sessions, rows)
        self.converted |= today.conv_now
        self.goal |= today.goal_now

        r_u, r_kind, r_ev, r_sec, r_act, r_amt = rows.arrays()
        r_sec = np.clip(np.floor(r_sec), 0, self.day_len[d] - 1).astype(np.int64)
        nr = len(r_u)
        fr = self.rng.random((3, nr)) if nr else np.zeros((3, 0))
        return self._behaviour_change(d, DayEvents(r_u, r_kind, r_ev, r_sec, r_act, r_amt, fr))

    def _start_sessions(self, users: np.ndarray, d: int) -> np.ndarray:
        hr = self.rng.choice(24, size=len(users), p=self.app.hour_weights)
        return (hr + self.rng.random(len(users))) * (self.day_len[d] / 24.0)

    def _advance(self, d: int) -> _Today:
        """Steps 1-3 of the process: transitions, then today's outcomes and session counts (fixed-size draws keep
        the stream independent of formatting)."""
        rng, n, state, age = self.rng, self.n, self.state, self.age
        par = self.par_after if d >= self.oc_day else self.par  # an outcome change: new hazards, same draws
        u_ab, u_cancel, u_exit, u_conv, u_goal = rng.random((5, n))
        in_a = state == 1
        to_b = in_a & (u_ab < par["churn_hazard"])
        cancel_now = to_b & self.converted & ~self.cancelled & (u_cancel < self.app.cancel_probability)
        self.cancelled |= cancel_now
        age[(state == 2)] += 1
        state[to_b] = 2
        age[to_b] = 0
        self.fade_day[to_b] = d
        die = (state == 2) & (u_exit < self.q_exit)
        state[die] = 3
        self.churn_day[die] = d
        new = (state == 0) & (self.signup_day == d)
        state[new] = 1
        alive = (state == 1) | (state == 2)
        fading = state == 2
        m = np.where(fading, FADE_OUTCOME_FACTOR, 1.0)
        conv_now = alive & ~self.converted & (u_conv < par["conversion_hazard"] * m)
        lam_p = np.where(alive & self.converted & ~self.cancelled, par["purchase_rate"] * m, 0.0)
        n_purch = rng.poisson(lam_p)
        goal_now = alive & ~self.goal & (u_goal < par["goal_hazard"] * m)
        cancel_emit = cancel_now & alive
        dl = self.day_len[d]
        rate = par["sessions_per_day"] * self.wday_f[d] * np.where(fading, FADE_ACTIVITY_DECAY ** (age + 1), 1.0)
        rate = rate * np.where(new, (dl - self.signup_sec) / dl, 1.0) * alive
        n_sess = rng.poisson(rate)
        need = (conv_now | (n_purch > 0) | goal_now | cancel_emit) & (n_sess == 0) & ~new
        n_sess[need] = 1
        return _Today(new, alive, conv_now, n_purch, goal_now, cancel_emit, n_sess)

    def _user_sessions(self, d: int, today: _Today, rows: _Rows) -> _Sessions:
        """The signed-up users' sessions: the sign-up (the first session of a new user) or a platform's opening
        event, then activity events from the user's mix (before / after the goal)."""
        rng, app, new, plat_code = self.rng, self.app, today.new, self.plat_code
        dl = self.day_len[d]
        al = np.flatnonzero(today.alive)
        cnt = today.n_sess[al] + new[al]
        first_sess = np.cumsum(cnt) - cnt
        sess_u = np.repeat(al, cnt)
        pos = _seg_arange(cnt)
        is_su = (pos == 0) & new[sess_u]
        start = self._start_sessions(sess_u, d)
        sus = self.signup_sec[sess_u].astype(np.float64)
        after = sus + 60 + rng.random(len(sess_u)) * np.maximum(dl - sus - 60, 1)
        start = np.where(new[sess_u], after, start)
        start[is_su] = sus[is_su]
        n_follow = rng.poisson(self.par["events_per_session"][sess_u])
        size = 1 + n_follow
        e_u = np.repeat(sess_u, size)
        e_pos, cs = _session_offsets(rng, size)
        e_sec = np.repeat(start, size) + cs + (np.repeat(is_su, size) & (e_pos > 0)) * 1.0
        e_first = e_pos == 0
        e_su = np.repeat(is_su, size)
        ev = np.empty(len(e_u), dtype=np.int64)
        opening = np.flatnonzero(e_first & ~e_su)
        for pc in (0, 1, 2):
            sel = opening[plat_code[e_u[opening]] == pc]
            ev[sel] = _pick(rng, len(sel), app.start_events[pc], app)
        ev[e_first & e_su] = self.ev_sign
        follow = np.flatnonzero(~e_first)
        fu = e_u[follow]
        cum = np.where(self.goal[fu][:, None], self.mix_post_cum[fu], self.mix_pre_cum[fu])
        r = rng.random(len(follow))
        act_codes = self.act_codes
        ev[follow] = act_codes[np.minimum((r[:, None] > cum).sum(1), len(act_codes) - 1)]
        kind = np.where(e_first & e_su, KIND_SIGNUP, KIND_IDENT)
        rows.add(e_u, kind, ev, e_sec, ~(e_first & e_su))
        return _Sessions(al, cnt, first_sess, start)

    def _signup_extras(self, new: np.ndarray, rows: _Rows) -> None:
        """Identity events of legacy users, and anonymous events just before signing up."""
        rng, app, plat_code, id_merge, signup_sec = self.rng, self.app, self.plat_code, self.id_merge, self.signup_sec
        su_u = np.flatnonzero(new)
        leg = su_u[id_merge[su_u] > 0]
        rows.add(
            leg,
            np.where(id_merge[leg] == 2, KIND_ALIAS, KIND_IDENTIFY),
            np.where(id_merge[leg] == 2, self.ev_alias, self.ev_identify),
            signup_sec[leg] - 1,
            False,
        )
        k_pre = 1 + rng.poisson(1.2, len(su_u))
        pre_u = np.repeat(su_u, k_pre)
        pre_pos = _seg_arange(k_pre)
        g = rng.exponential(45.0, len(pre_u)) + 5
        cg = np.cumsum(g)
        cg -= np.repeat(cg[np.cumsum(k_pre) - k_pre], k_pre) - np.repeat(g[np.cumsum(k_pre) - k_pre], k_pre)
        pre_sec = np.maximum(signup_sec[pre_u] - 2 - cg, 0)
        pre_ev = _pick(rng, len(pre_u), app.anon_events, app)
        last = pre_pos == np.repeat(k_pre - 1, k_pre)  # the earliest anonymous event opens the session
        for pc in (0, 1, 2):
            sel = np.flatnonzero(last & (plat_code[pre_u] == pc))
            pre_ev[sel] = _pick(rng, len(sel), app.start_events[pc], app)
        rows.add(pre_u, KIND_ANON, pre_ev, pre_sec, True)

    def _anonymous_visits(self, d: int, rows: _Rows) -> None:
        """Anonymous visits of future users, and of visitors who never sign up."""
        rng, app, plat_code = self.rng, self.app, self.plat_code
        vis = self.visits == d
        vis_n = vis.sum(1)
        vu = np.repeat(np.flatnonzero(vis_n), vis_n[vis_n > 0])
        k_v = 1 + rng.poisson(1.5, len(vu))
        v_start = self._start_sessions(vu, d)
        v_u = np.repeat(vu, k_v)
        v_pos, vcs = _session_offsets(rng, k_v)
        v_ev = _pick(rng, len(v_u), app.anon_events, app)
        for pc in (0, 1, 2):
            sel = np.flatnonzero((v_pos == 0) & (plat_code[v_u] == pc))
            v_ev[sel] = _pick(rng, len(sel), app.start_events[pc], app)
        rows.add(v_u, KIND_ANON, v_ev, np.repeat(v_start, k_v) + vcs, True)

    def _outcome_events(self, d: int, today: _Today, sessions: _Sessions, rows: _Rows) -> None:
        """Conversions, further purchases, first goals and cancellations, each inside a random session of the
        user that day; records their times."""
        rng, midnights, dl = self.rng, self.midnights, self.day_len[d]
        mov, sigma, cents = self.par["mean_order_value"], self.app.amount_sigma, self.app.amount_key == "price"
        pos_map = np.full(self.n, -1, dtype=np.int64)
        pos_map[sessions.users] = np.arange(len(sessions.users))

        def place(users: np.ndarray) -> np.ndarray:
            pm = pos_map[users]
            sidx = sessions.first[pm] + np.floor(rng.random(len(users)) * sessions.count[pm]).astype(np.int64)
            return sessions.start[sidx] + 5 + rng.exponential(150.0, len(users))

        def amounts(users: np.ndarray) -> np.ndarray:
            x = mov[users] * np.exp(rng.normal(-(sigma**2) / 2, sigma, len(users)))
            return (
                np.maximum(np.round(x * 100), 300).astype(np.int64)
                if cents
                else np.maximum(np.round(x), 199).astype(np.int64)
            )

        cu = np.flatnonzero(today.conv_now)
        c_sec = np.minimum(place(cu), dl - 1)
        self.conv_t[cu] = midnights[d] + np.floor(c_sec).astype(np.int64)
        rows.add(cu, KIND_IDENT, self.ev_conv, c_sec, False, amounts(cu))
        n_purch = today.n_purch
        pu = np.repeat(np.flatnonzero(n_purch), n_purch[n_purch > 0])
        rows.add(pu, KIND_IDENT, self.ev_conv, place(pu), False, amounts(pu))
        gu = np.flatnonzero(today.goal_now)
        g_sec = np.minimum(place(gu), dl - 1)
        self.goal_t[gu] = midnights[d] + np.floor(g_sec).astype(np.int64)
        rows.add(gu, KIND_IDENT, self.ev_goal, g_sec, False)
        if self.ev_cancel >= 0:
            xu = np.flatnonzero(today.cancel_emit)
            x_sec = np.minimum(place(xu), dl - 1)
            self.cancel_t[xu] = midnights[d] + np.floor(x_sec).astype(np.int64)
            rows.add(xu, KIND_IDENT, self.ev_cancel, x_sec, False)

    def _behaviour_change(self, d: int, e: DayEvents) -> DayEvents:
        """Thin (factor < 1) or add copies (factor > 1) of one activity event from the change day on (own stream)."""
        bc = self.spec.behaviour_change
        if bc is None or d < self.bc_day:
            return e
        nr = len(e)
        hit = e.act & (e.ev == self.bc_code)
        if bc.factor < 1:
            keep = ~(hit & (self.rng_bc.random(nr) >= bc.factor))
            return DayEvents(*(a[keep] for a in (e.u, e.kind, e.ev, e.sec, e.act, e.amt)), e.variant_draws[:, keep])
        if bc.factor > 1:
            extra = np.where(hit, self.rng_bc.poisson(bc.factor - 1, nr), 0)
            idx = np.repeat(np.arange(nr), extra)
            jit = np.minimum(
                e.sec[idx] + np.floor(self.rng_bc.random(len(idx)) * 300).astype(np.int64), int(self.day_len[d]) - 1
            )
            u, kind, ev, act, amt = (np.concatenate([a, a[idx]]) for a in (e.u, e.kind, e.ev, e.act, e.amt))
            draws = np.concatenate([e.variant_draws, e.variant_draws[:, idx]], axis=1)
            return DayEvents(u, kind, ev, np.concatenate([e.sec, jit]), act, amt, draws)
        return e
