"""scikit-learn's KMeans on the data benches/kmeans.rs wrote, as its peer.

Usage: python3 kmeans_sklearn.py DATA.f64 ROWS COLS K SEED
DATA.f64 holds ROWS x COLS little-endian float64 values, row after row. Prints one JSON line:
{"seconds": the best of 3 fit times, "inertia": ..., "n_iter": ..., "threads": ...}.
The fit uses scikit-learn's defaults (k-means++ greedy init, n_init=1, max_iter=300, tol=1e-4,
Lloyd) on every core threadpoolctl reports. Like segflow's side of the benchmark, it fits three
times with the same seed and keeps the fastest.
"""

import json
import sys
import time

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_info


def main() -> None:
    path, rows, cols, k, seed = sys.argv[1:6]
    data = np.fromfile(path, dtype="<f8").reshape(int(rows), int(cols))
    seconds = float("inf")
    for _ in range(3):
        model = KMeans(n_clusters=int(k), n_init=1, max_iter=300, tol=1e-4, random_state=int(seed))
        start = time.perf_counter()
        model.fit(data)
        seconds = min(seconds, time.perf_counter() - start)
    threads = max((p.get("num_threads", 1) for p in threadpool_info()), default=1)
    print(json.dumps({
        "seconds": seconds,
        "inertia": float(model.inertia_),
        "n_iter": int(model.n_iter_),
        "threads": threads,
    }))


if __name__ == "__main__":
    main()
