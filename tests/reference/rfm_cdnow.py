"""Independent RFM figures for data/cdnow_transactions.csv, hard-coded in tests/segment_rfm.rs.

Run from the repository root: python3 tests/reference/rfm_cdnow.py
pandas only: recency = days from the last order to as_of, frequency = rows, monetary = sum;
scores = 1 + floor(5 * (rank_min - 1) / n) with pandas rank(method="min") (recency on
-recency_days); segments from the default table, first match wins.
"""

import pandas as pd

AS_OF = pd.Timestamp("1998-07-01")
BINS = 5
TABLE = [
    ("Champions", (4, 5), (4, 5), (4, 5)),
    ("Loyal Customers", (2, 5), (3, 5), (3, 5)),
    ("New Customers", (4, 5), (1, 1), (1, 1)),
    ("Promising", (3, 4), (1, 1), (1, 1)),
    ("Potential Loyalist", (3, 5), (1, 3), (1, 3)),
    ("Need Attention", (2, 3), (2, 3), (2, 3)),
    ("About To Sleep", (2, 3), (1, 2), (1, 2)),
    ("Can't Lose Them", (1, 1), (4, 5), (4, 5)),
    ("At Risk", (1, 2), (2, 5), (2, 5)),
    ("Lost", (1, 1), (1, 1), (1, 1)),
    ("Hibernating", (1, 2), (1, 2), (1, 2)),
]


def score(values: pd.Series) -> pd.Series:
    rank = values.rank(method="min")
    return (1 + (BINS * (rank - 1) // len(values))).astype(int)


def segment(row) -> str:
    for name, r, f, m in TABLE:
        if r[0] <= row.r <= r[1] and f[0] <= row.f <= f[1] and m[0] <= row.m <= m[1]:
            return name
    return "Others"


tx = pd.read_csv("data/cdnow_transactions.csv", dtype={"customer_id": str}, parse_dates=["order_date"])
tx = tx[tx.order_date <= AS_OF]
g = tx.groupby("customer_id").agg(
    last=("order_date", "max"), frequency=("amount", "size"), monetary=("amount", "sum")
)
g["recency_days"] = (AS_OF - g["last"]).dt.days
g["r"] = score(-g["recency_days"])
g["f"] = score(g["frequency"])
g["m"] = score(g["monetary"].round(6))
g["segment"] = g.apply(segment, axis=1)
print("customers", len(g), "transactions", len(tx))
print("total monetary", round(g.monetary.sum(), 2))
print("score counts r", g.r.value_counts().sort_index().to_dict())
print("score counts f", g.f.value_counts().sort_index().to_dict())
print("score counts m", g.m.value_counts().sort_index().to_dict())
print("segments", g.segment.value_counts().to_dict())
for cid in ["00001", "00002", "00100", "12345", "23570"]:
    row = g.loc[cid]
    print(cid, int(row.recency_days), int(row.frequency), round(row.monetary, 2), f"{row.r}{row.f}{row.m}", row.segment)
