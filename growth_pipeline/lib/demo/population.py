"""The demo population: each user's observable attributes (channel, platform, city, role, ...), latent traits
(engagement, price sensitivity, sociability, team size), ids and ID-merge flavour, and the exact daily parameters
of the hidden process derived from them.

The parameters are non-linear functions of traits and observable attributes (thresholds and interactions,
listed in ``FORMULAS`` and written to truth.json), e.g. powerplay churn x3 for engagement < 0.3 on iOS,
conversion x5 for company_size >= 20 AND channel referral.
"""

from __future__ import annotations

import json

import numpy as np

from growth_pipeline.lib.demo.apps import CUISINES, CustomerApp, normalised
from growth_pipeline.lib.demo.spec import ALIAS_SHARE_OF_LEGACY, LEGACY_ID_MERGE_SHARE

# (city, region, weight) of users
_IN_CITIES = [
    ("Mumbai", "Maharashtra", 14),
    ("Pune", "Maharashtra", 10),
    ("Bengaluru", "Karnataka", 12),
    ("Delhi", "Delhi", 10),
    ("Hyderabad", "Telangana", 10),
    ("Chennai", "Tamil Nadu", 8),
    ("Ahmedabad", "Gujarat", 7),
    ("Kolkata", "West Bengal", 6),
    ("Jaipur", "Rajasthan", 5),
    ("Lucknow", "Uttar Pradesh", 4),
    ("Surat", "Gujarat", 3),
    ("Nagpur", "Maharashtra", 3),
    ("Indore", "Madhya Pradesh", 3),
    ("Noida", "Uttar Pradesh", 3),
    ("Gurugram", "Haryana", 2),
]
_US_CITIES = [
    ("San Francisco", "California", 12),
    ("Los Angeles", "California", 14),
    ("Seattle", "Washington", 8),
    ("New York", "New York", 14),
    ("Austin", "Texas", 7),
    ("Chicago", "Illinois", 9),
    ("Portland", "Oregon", 5),
    ("San Diego", "California", 6),
    ("Denver", "Colorado", 5),
    ("Boston", "Massachusetts", 6),
    ("Miami", "Florida", 6),
    ("Atlanta", "Georgia", 5),
]

_CUISINE_MOV = np.array([28.0, 16.0, 38.0, 22.0, 24.0, 14.0, 15.0])


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


_PP_CHANNELS = ["google", "facebook", "referral", "youtube", "instagram", "direct"]
_PP_CHANNEL_P = [0.27, 0.20, 0.15, 0.10, 0.08, 0.20]
_PP_CAMPAIGNS = {
    "google": "search_construction_app",
    "facebook": "fb_contractor_leads",
    "referral": "refer_a_contractor",
    "youtube": "yt_product_demo",
    "instagram": "ig_site_reels",
}
PP_DOMAINS = {
    "google": "www.google.com",
    "facebook": "m.facebook.com",
    "referral": "web.whatsapp.com",
    "youtube": "www.youtube.com",
    "instagram": "l.instagram.com",
    "direct": "$direct",
}
_PP_ROLES = ["owner", "site engineer", "supervisor", "purchase manager"]
_PP_ROLE_P = [0.30, 0.35, 0.25, 0.10]
_PP_PROJECT_TYPES = ["residential", "commercial", "infrastructure", "interior"]
_PP_PROJECT_P = [0.45, 0.25, 0.12, 0.18]

_FD_CHANNELS = ["facebook", "twitter", "reddit", "pinterest"]
_FD_CHANNEL_P = [0.34, 0.18, 0.20, 0.28]
_FD_CAMPAIGNS = {
    "facebook": ["fb_spring_menu", "fb_lookalike_foodies", "fb_retarget_cart"],
    "twitter": ["tw_promoted_recipes", "tw_influencer_chefs"],
    "reddit": ["r_food_sponsored", "r_cooking_ama"],
    "pinterest": ["pin_meal_boards", "pin_seasonal_recipes"],
}
FD_DOMAINS = {
    "facebook": "l.facebook.com",
    "twitter": "t.co",
    "reddit": "out.reddit.com",
    "pinterest": "www.pinterest.com",
}

_PLATFORMS = ["Android", "iOS", "web"]


def _sample_common(rng, n_total, platform_p, cities):
    platform = rng.choice(3, size=n_total, p=platform_p)
    web_os = np.where(rng.random(n_total) < 0.7, "Windows", "Mac OS X")
    os_ = np.where(platform == 0, "Android", np.where(platform == 1, "iOS", web_os))
    city = rng.choice(len(cities), size=n_total, p=normalised([c[2] for c in cities]))
    return platform, os_, city


def profiles(model: CustomerApp, rng: np.random.Generator, n: int, n_anon: int, days: int) -> dict:
    """Observable attributes, latent traits and ids of n users followed by n_anon anonymous-only visitors."""
    total = n + n_anon
    p = {}
    if model.name == "powerplay":
        platform, os_, city = _sample_common(rng, total, [0.72, 0.12, 0.16], _IN_CITIES)
        channel = rng.choice(len(_PP_CHANNELS), size=total, p=_PP_CHANNEL_P)
        role = rng.choice(4, size=total, p=_PP_ROLE_P)
        company_size = np.clip(np.round(np.exp(rng.normal(2.3, 1.0, total))), 1, 2000).astype(np.int64)
        project_type = rng.choice(4, size=total, p=_PP_PROJECT_P)
        ch = np.array(_PP_CHANNELS)[channel]
        e = _sigmoid(
            _logit(rng.beta(2.2, 2.2, total))
            + 0.5 * (role == 1)
            + 0.4 * (ch == "referral")
            - 0.4 * np.isin(ch, ["facebook", "instagram"])
            + 0.2 * (platform == 2)
        )
        s = _sigmoid(_logit(rng.beta(2.0, 2.0, total)) + 0.8 * (company_size < 10) - 0.6 * (company_size >= 50))
        team = np.maximum(1, np.round(company_size**0.55 * np.exp(rng.normal(0, 0.35, total)))).astype(np.int64)
        p.update(
            channel=ch,
            role=np.array(_PP_ROLES)[role],
            role_code=role,
            company_size=company_size,
            project_type=np.array(_PP_PROJECT_TYPES)[project_type],
            engagement=e,
            price_sensitivity=s,
            team_size=team,
            group=role,
        )
        p["campaign"] = np.array([_PP_CAMPAIGNS.get(c, "") for c in ch], dtype=object)
        cities = _IN_CITIES
    else:
        platform, os_, city = _sample_common(rng, total, [0.15, 0.27, 0.58], _US_CITIES)
        channel = rng.choice(4, size=total, p=_FD_CHANNEL_P)
        ch = np.array(_FD_CHANNELS)[channel]
        camp_u = rng.random(total)
        campaign = np.array(
            [_FD_CAMPAIGNS[c][int(u * len(_FD_CAMPAIGNS[c]))] for c, u in zip(ch, camp_u, strict=False)], dtype=object
        )
        fav = rng.choice(7, size=total, p=normalised([16, 15, 10, 6, 22, 18, 13]))
        e = _sigmoid(
            _logit(rng.beta(2.0, 2.5, total)) + 0.5 * (ch == "reddit") + 0.3 * ((ch == "pinterest") & (platform == 2))
        )
        s = _sigmoid(_logit(rng.beta(2.0, 2.0, total)) + 0.3 * (ch == "twitter"))
        c = _sigmoid(_logit(rng.beta(2.0, 3.0, total)) + 0.8 * (ch == "reddit") + 0.4 * (ch == "pinterest"))
        p.update(
            channel=ch,
            campaign=campaign,
            favourite_cuisine=np.array(CUISINES)[fav],
            fav_code=fav,
            engagement=e,
            price_sensitivity=s,
            sociability=c,
            group=platform,
        )
        cities = _US_CITIES
    p.update(
        platform=np.array(_PLATFORMS)[platform],
        platform_code=platform,
        os=os_,
        city=np.array([c[0] for c in cities])[city],
        region=np.array([c[1] for c in cities])[city],
    )

    # ids: device ids are UUID-like, user ids 24-hex (powerplay, Mongo-style) or numeric (foodie)
    raw = rng.bytes(16 * total).hex()
    dev = [
        f"{raw[i : i + 8]}-{raw[i + 8 : i + 12]}-4{raw[i + 13 : i + 16]}-a{raw[i + 17 : i + 20]}-{raw[i + 20 : i + 32]}"
        for i in range(0, 32 * total, 32)
    ]
    p["device_id"] = np.array(dev, dtype=object)
    if model.name == "powerplay":
        raw_u = rng.bytes(12 * n).hex()
        uid = [raw_u[i : i + 24] for i in range(0, 24 * n, 24)]
    else:
        uid = (
            [str(100000 + int(k)) for k in rng.permutation(900000)[:n]]
            if n <= 900000
            else [str(1000000 + int(k)) for k in rng.permutation(9000000)[:n]]
        )
    p["user_id"] = np.array(uid + [""] * n_anon, dtype=object)
    merge_u = rng.random(total)
    id_merge = np.where(
        merge_u < LEGACY_ID_MERGE_SHARE * ALIAS_SHARE_OF_LEGACY, 2, np.where(merge_u < LEGACY_ID_MERGE_SHARE, 1, 0)
    )
    p["id_merge_code"] = id_merge
    p["anon_distinct_id"] = np.where(
        id_merge == 0, np.char.add("$device:", p["device_id"].astype(str)), p["device_id"].astype(str)
    ).astype(object)

    return p


def parameters(model: CustomerApp, p: dict, n: int) -> dict[str, np.ndarray]:
    """Exact daily parameters of the n signed-up users (non-linear in traits and observables)."""
    e = p["engagement"][:n]
    s = p["price_sensitivity"][:n]
    ch = p["channel"][:n]
    plat = p["platform_code"][:n]
    if model.name == "powerplay":
        role = p["role_code"][:n]
        cs = p["company_size"][:n]
        team = p["team_size"][:n]
        ptype = p["project_type"][:n]
        sessions = (0.2 + 1.4 * e**1.6) * np.where(team >= 8, 1.25, 1.0) * np.where(plat == 2, 0.85, 1.0)
        eps = 0.8 + 1.6 * e + 0.3 * np.isin(role, [1, 2])
        churn = 0.0035 + 0.03 * (1 - e) ** 3
        churn = churn * np.where((e < 0.3) & (plat == 1), 3.0, 1.0) * np.where(team >= 10, 0.45, 1.0)
        churn = churn * np.where(np.isin(ch, ["facebook", "instagram"]) & (s > 0.6), 1.8, 1.0)
        churn = churn * np.where((role == 0) & (cs >= 20), 0.6, 1.0)
        conv = 0.0015 * (1 + 6 * e**2) * (1.6 - s)
        conv = conv * np.where((cs >= 20) & (ch == "referral"), 5.0, 1.0)
        conv = conv * np.select([role == 0, role == 1], [2.2, 0.5], 1.0) * np.where(plat == 2, 1.8, 1.0)
        conv = conv * np.where((cs < 5) & (s > 0.5), 0.35, 1.0)
        purchase = (1 / 30) * np.where(team >= 10, 1.6, 1.0)
        mov = (999 + 450 * team**0.85 * (1.25 - 0.5 * s)) * np.where(ptype == "infrastructure", 1.5, 1.0)
        goal = 0.03 * (0.25 + 1.6 * e) * np.select([role == 0, role == 1, role == 2], [3.0, 1.2, 0.8], 0.5)
        goal = goal * np.where(team == 1, 0.5, 1.0) * np.where((ch == "youtube") & (e > 0.5), 2.0, 1.0)
    else:
        c = p["sociability"][:n]
        fav = p["fav_code"][:n]
        sessions = 0.15 + 1.2 * e**1.5
        eps = 1.0 + 2.0 * e
        churn = 0.004 + 0.035 * (1 - e) ** 3
        churn = churn * np.where((ch == "pinterest") & (plat != 2) & (e < 0.35), 3.0, 1.0)
        churn = churn * np.where(c > 0.6, 0.5, 1.0) * np.where(ch == "twitter", 1.5, 1.0)
        conv = 0.004 * (1 + 5 * e**2) * (1.5 - s)
        conv = conv * np.where((ch == "reddit") & np.isin(fav, [0, 2]) & (s < 0.45), 4.0, 1.0)
        conv = conv * np.where(ch == "facebook", 1.8, 1.0) * np.where((ch == "twitter") & (plat != 2), 0.5, 1.0)
        purchase = (0.03 + 0.08 * e**2) * np.where(np.isin(fav, [1, 5, 6]), 1.5, 1.0)
        mov = _CUISINE_MOV[fav] * (1.3 - 0.6 * s)
        goal = (0.01 + 0.08 * c**2) * np.where(np.isin(ch, ["reddit", "pinterest"]) & (c > 0.5), 2.5, 1.0)
    return {
        "sessions_per_day": sessions,
        "events_per_session": eps,
        "activity_rate": sessions * (1 + eps),
        "churn_hazard": np.clip(churn, 0.001, 0.25),
        "conversion_hazard": np.clip(conv, 1e-4, 0.08),
        "purchase_rate": purchase,
        "mean_order_value": np.round(mov, 2),
        "goal_hazard": np.clip(goal, 0.002, 0.3),
    }


def user_mixes(model: CustomerApp, p: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative activity mixes (n, n_activity) before / after the goal: the group's base mix times per-user
    modifiers, so latent traits also show in *what* users do (team size in attendance, sociability in likes)."""
    g = np.asarray(p["group"][:n], dtype=np.int64)
    e = p["engagement"][:n]
    mod = np.ones((n, len(model.activity)))
    if model.name == "powerplay":
        team = p["team_size"][:n]
        mod[:, model.activity.index("Attendance Marked")] = 0.5 + 0.3 * np.log1p(team)
        mod[:, model.activity.index("Report Generated")] = np.where(team >= 10, 1.8, 1.0)
        mod[:, model.activity.index("Photo Uploaded")] = 0.6 + 0.8 * e
    else:
        c = p["sociability"][:n]
        s = p["price_sensitivity"][:n]
        mod[:, model.activity.index("Like")] = 0.3 + 2.0 * c
        mod[:, model.activity.index("Share")] = 0.3 + 2.5 * c
        mod[:, model.activity.index("Meal Viewed")] = 0.7 + 0.9 * s
    out = []
    for base in (model.mix_pre, model.mix_post):
        w = base[g] * mod
        out.append(np.cumsum(w / w.sum(1, keepdims=True), axis=1))
    return out[0], out[1]


MIX_MODIFIERS = {
    "powerplay": "weight x (0.5 + 0.3 ln(1+team_size)) for Attendance Marked, x 1.8[team>=10] for Report Generated, "
    "x (0.6 + 0.8 e) for Photo Uploaded; then renormalised",
    "foodie": "weight x (0.3 + 2 sociability) for Like, x (0.3 + 2.5 sociability) for Share, x (0.7 + 0.9 s) for "
    "Meal Viewed; then renormalised",
}


FORMULAS = {
    "powerplay": {
        "traits": "engagement = sigmoid(logit(Beta(2.2,2.2)) + 0.5[role=site engineer] + 0.4[referral] "
        "- 0.4[facebook|instagram] + 0.2[web]); price_sensitivity = sigmoid(logit(Beta(2,2)) "
        "+ 0.8[company_size<10] - 0.6[company_size>=50]); team_size = max(1, round(company_size^0.55 "
        "* LogNormal(0,0.35))); company_size = round(exp(N(2.3,1))) clipped 1..2000",
        "sessions_per_day": "(0.2 + 1.4 e^1.6) * 1.25[team>=8] * 0.85[web]",
        "events_per_session": "0.8 + 1.6 e + 0.3[role in site engineer, supervisor]",
        "churn_hazard": "clip((0.0035 + 0.03 (1-e)^3) * 3[e<0.3 & iOS] * 0.45[team>=10] "
        "* 1.8[facebook|instagram & s>0.6] * 0.6[owner & company_size>=20], 0.001, 0.25)",
        "conversion_hazard": "clip(0.0015 (1 + 6 e^2)(1.6 - s) * 5[company_size>=20 & referral] "
        "* {owner 2.2, site engineer 0.5, else 1} * 1.8[web] * 0.35[company_size<5 & s>0.5], "
        "1e-4, 0.08)",
        "purchase_rate": "(1/30) * 1.6[team>=10]   (renewals / add-on seats per day)",
        "mean_order_value": "(999 + 450 team^0.85 (1.25 - 0.5 s)) * 1.5[project_type=infrastructure]  INR",
        "goal_hazard": "clip(0.03 (0.25 + 1.6 e) * {owner 3, site engineer 1.2, supervisor 0.8, purchase "
        "manager 0.5} * 0.5[team=1] * 2[youtube & e>0.5], 0.002, 0.3)   goal = Project Created",
    },
    "foodie": {
        "traits": "engagement = sigmoid(logit(Beta(2,2.5)) + 0.5[reddit] + 0.3[pinterest & web]); "
        "price_sensitivity = sigmoid(logit(Beta(2,2)) + 0.3[twitter]); sociability = "
        "sigmoid(logit(Beta(2,3)) + 0.8[reddit] + 0.4[pinterest])",
        "sessions_per_day": "0.15 + 1.2 e^1.5",
        "events_per_session": "1.0 + 2.0 e",
        "churn_hazard": "clip((0.004 + 0.035 (1-e)^3) * 3[pinterest & mobile & e<0.35] * 0.5[sociability>0.6] "
        "* 1.5[twitter], 0.001, 0.25)",
        "conversion_hazard": "clip(0.004 (1 + 5 e^2)(1.5 - s) * 4[reddit & favourite in (japanese, french) & s<0.45] "
        "* 1.8[facebook] * 0.5[twitter & mobile], 1e-4, 0.08)",
        "purchase_rate": "(0.03 + 0.08 e^2) * 1.5[favourite in (chinese, mexican, vietnamese)]",
        "mean_order_value": "cuisine_base[favourite] * (1.3 - 0.6 s) USD, cuisine_base = "
        + json.dumps(dict(zip(CUISINES, _CUISINE_MOV.tolist(), strict=False))),
        "goal_hazard": "clip((0.01 + 0.08 c^2) * 2.5[(reddit|pinterest) & c>0.5], 0.002, 0.3)   goal = Share",
    },
}


def check_vocabularies() -> None:
    """Every vocabulary value is written into JSON lines as is: none may need escaping."""
    words = [
        *_PP_CHANNELS,
        *_PP_CAMPAIGNS.values(),
        *PP_DOMAINS.values(),
        *_PP_ROLES,
        *_PP_PROJECT_TYPES,
        *_FD_CHANNELS,
        *[c for v in _FD_CAMPAIGNS.values() for c in v],
        *FD_DOMAINS.values(),
        *CUISINES,
        *[c[0] for c in _IN_CITIES + _US_CITIES],
        *[c[1] for c in _IN_CITIES + _US_CITIES],
    ]
    bad = [w for w in words if json.dumps(w) != f'"{w}"']
    if bad:  # pragma: no cover - guards future edits of the vocabularies
        raise AssertionError(f"vocabulary values need JSON escaping: {bad}")
