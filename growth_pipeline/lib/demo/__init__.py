"""Demo data: realistic Mixpanel raw exports for two demo customers, with the hidden truth next to them.

spec.py        what a run is asked for (DemoSpec, BehaviourChange), what it reports (DemoSummary), the constants
apps.py        the two customers' apps: events, session openers, activity mixes, property variants, rhythm
population.py  users' attributes, latent traits and ids, and the daily parameters derived from them
simulate.py    the hidden daily process, simulated day by day into event rows
records.py     event rows written as raw-export JSON lines, with duplicates and malformed lines
writer.py      the day files in the customer's layout (Export API or object storage)
truth.py       truth.parquet, truth.json and the true probability of an outcome in a window
generator.py   generate_demo: the steps above in order
oracle.py      the oracle references logged next to models trained on demo data
"""
