"""scikit-learn's k-means on CDNOW RFM features, for tests/segment_kmeans.rs.

Run from the repository root: python3 tests/reference/kmeans_cdnow.py
Features per customer as of 1998-07-01: recency_days, frequency (rows), monetary (sum),
z-scored with population standard deviation (StandardScaler); KMeans(k, n_init=10,
random_state=0) for k = 2..6: the inertia of each.
"""

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from sklearn.preprocessing import StandardScaler

AS_OF = pd.Timestamp("1998-07-01")
tx = pd.read_csv("data/cdnow_transactions.csv", dtype={"customer_id": str}, parse_dates=["order_date"])
g = tx.groupby("customer_id").agg(last=("order_date", "max"), frequency=("amount", "size"), monetary=("amount", "sum"))
g["recency_days"] = (AS_OF - g["last"]).dt.days
X = StandardScaler().fit_transform(g[["recency_days", "frequency", "monetary"]].to_numpy(dtype=np.float64))
for k in range(2, 7):
    model = KMeans(n_clusters=k, n_init=10, random_state=0).fit(X)
    print(k, round(float(model.inertia_), 3), sorted(np.bincount(model.labels_).tolist(), reverse=True))
