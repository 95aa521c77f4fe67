#!/usr/bin/env python3
"""segflow plugin `churn`, kind `score`: churn risk from RFM values (standard library only).

Each of recency, frequency and monetary becomes a risk between 0 and 1 by its mid-rank among
all customers (long since the last purchase, few purchases and little money spent are risky);
the churn risk is their weighted mean. Protocol: docs/plugins.md.
"""

import csv
import json
import os
import sys

PROTOCOL = 1
DEFAULT_WEIGHTS = {"recency": 0.5, "frequency": 0.3, "monetary": 0.2}


def fail(message, code=os.EX_DATAERR):
    """Says what is wrong on stderr (segflow quotes it) and exits; 65 and 78 are not retried."""
    print(f"churn.score: {message}", file=sys.stderr)
    sys.exit(code)


def mid_ranks(values, risky_when_high):
    """The share of customers less risky than each one, ties counted half: 0 (safest) to 1."""
    n = len(values)
    order = sorted(range(n), key=lambda i: values[i])
    ranks = [0.0] * n
    i = 0
    while i < n:
        j = i
        while j + 1 < n and values[order[j + 1]] == values[order[i]]:
            j += 1
        below = i  # customers with a strictly smaller value
        tied = j - i + 1
        share_below = (below + 0.5 * tied) / n
        for k in range(i, j + 1):
            ranks[order[k]] = share_below if risky_when_high else 1.0 - share_below
        i = j + 1
    return ranks


def number(text, row, column):
    try:
        return float(text)
    except ValueError:
        fail(f"row {row}: `{column}` is not a number")


def main():
    request = json.load(sys.stdin)
    if request.get("protocol") != PROTOCOL:
        fail(
            f"segflow sent protocol version {request.get('protocol')}, this plugin speaks {PROTOCOL}",
            os.EX_CONFIG,
        )
    config = request["with"]
    columns = {
        "customer": config.get("customer", "customer_id"),
        "recency": config.get("recency", "recency_days"),
        "frequency": config.get("frequency", "frequency"),
        "monetary": config.get("monetary", "monetary"),
    }
    weights = {**DEFAULT_WEIGHTS, **config.get("weights", {})}
    if sum(weights.values()) <= 0:
        fail("the weights add up to 0; give at least one a positive weight", os.EX_CONFIG)
    high_at = config.get("high_at", 0.66)
    medium_at = config.get("medium_at", 0.33)
    if medium_at > high_at:
        fail(f"medium_at ({medium_at}) is above high_at ({high_at})", os.EX_CONFIG)

    main_inputs = [i for i in request["inputs"] if i["name"] == "main"]
    source = main_inputs[0]
    with open(source["path"], newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        for role, column in columns.items():
            if column not in header:
                fail(
                    f"the {role} column `{column}` is not in `{source['table']}` "
                    f"(its columns: {', '.join(header)}); set `{role}:` in the step's `with`",
                    os.EX_CONFIG,
                )
        rows = list(reader)
    print(f"scoring {len(rows)} customers of `{source['table']}`", file=sys.stderr)

    recency = [number(r[columns["recency"]], i + 1, columns["recency"]) for i, r in enumerate(rows)]
    frequency = [number(r[columns["frequency"]], i + 1, columns["frequency"]) for i, r in enumerate(rows)]
    monetary = [number(r[columns["monetary"]], i + 1, columns["monetary"]) for i, r in enumerate(rows)]
    risks = {
        "recency": mid_ranks(recency, risky_when_high=True),
        "frequency": mid_ranks(frequency, risky_when_high=False),
        "monetary": mid_ranks(monetary, risky_when_high=False),
    }
    total_weight = sum(weights.values())

    out_file = "churn_risk.csv"
    high = 0
    risk_sum = 0.0
    with open(os.path.join(request["output_dir"], out_file), "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([columns["customer"], columns["recency"], columns["frequency"],
                         columns["monetary"], "churn_risk", "risk_band"])
        for i, row in enumerate(rows):
            risk = sum(weights[k] * risks[k][i] for k in weights) / total_weight
            band = "high" if risk >= high_at else "medium" if risk >= medium_at else "low"
            high += band == "high"
            risk_sum += risk
            writer.writerow([row[columns["customer"]], row[columns["recency"]],
                             row[columns["frequency"]], row[columns["monetary"]],
                             f"{risk:.4f}", band])

    scored = len(rows)
    print(f"{high} of {scored} customers are at high risk", file=sys.stderr)
    json.dump(
        {
            "protocol": PROTOCOL,
            "outputs": {
                "scored": scored,
                "high_risk": high,
                "high_risk_share": round(high / scored, 4) if scored else 0.0,
                "mean_risk": round(risk_sum / scored, 4) if scored else 0.0,
            },
            "datasets": [{"name": "main", "file": out_file, "format": "csv"}],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
