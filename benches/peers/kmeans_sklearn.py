"""scikit-learn's KMeans on the data benches/kmeans.rs wrote, as its peer.

Usage: python3 kmeans_sklearn.py DATA.f64 ROWS COLS K SEED[,SEED...]
DATA.f64 holds ROWS x COLS little-endian float64 values, row after row. Prints one JSON line
with the means over the seeds: {"seconds": ..., "inertia": ..., "n_iter": ..., "threads": ...}.
The fit uses scikit-learn's defaults (k-means++ greedy init, n_init=1, max_iter=300, tol=1e-4,
Lloyd) on every core threadpoolctl reports. Like segflow's side of the benchmark, it fits once
per seed.
"""

import json
import sys
import time

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_info


def main() -> None:
    path, rows, cols, k, seeds = sys.argv[1:6]
    data = np.fromfile(path, dtype="<f8").reshape(int(rows), int(cols))
    seeds = [int(s) for s in seeds.split(",")]
    seconds, inertia, n_iter = [], [], []
    for seed in seeds:
        model = KMeans(n_clusters=int(k), n_init=1, max_iter=300, tol=1e-4, random_state=seed)
        start = time.perf_counter()
        model.fit(data)
        seconds.append(time.perf_counter() - start)
        inertia.append(float(model.inertia_))
        n_iter.append(int(model.n_iter_))
    threads = max((p.get("num_threads", 1) for p in threadpool_info()), default=1)
    print(json.dumps({
        "seconds": sum(seconds) / len(seeds),
        "inertia": sum(inertia) / len(seeds),
        "n_iter": sum(n_iter) / len(seeds),
        "threads": threads,
    }))


if __name__ == "__main__":
    main()
