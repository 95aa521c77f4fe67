"""The benchmark's peer: the same gather + clean + aggregate as benches/data_pipeline.rs runs in
segflow, written the usual pandas way.

    python3 benches/peers/pandas_pipeline.py DATA_DIR OUT_DIR

Prints a JSON summary (row counts, revenue) so the runner can check both did the same work.
"""

import json
import os
import sys

import pandas as pd

# The WHATWG "valid e-mail address" rule, as segflow's email operation uses.
EMAIL = (
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
    r"(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$"
)


def main(data_dir: str, out_dir: str) -> None:
    os.makedirs(out_dir, exist_ok=True)
    customers = pd.read_csv(
        os.path.join(data_dir, "customers.csv"),
        dtype={"customer_id": str, "signup_date": str, "email": str, "country": str},
        keep_default_na=False,
        na_values=[""],
    )
    transactions = pd.read_csv(
        os.path.join(data_dir, "transactions.csv"),
        dtype={"customer_id": str},
        parse_dates=["order_date"],
    )
    rows_in = len(customers)
    rejected = 0

    for column in ["first_name", "last_name", "city"]:
        customers[column] = customers[column].str.strip()

    email = customers["email"].str.strip().str.lower()
    invalid = email.notna() & ~email.str.match(EMAIL, na=False)
    rejected += int(invalid.sum())
    customers = customers[~invalid].copy()
    customers["email"] = email[~invalid]

    missing = customers["email"].isna() | (customers["email"].str.strip() == "")
    rejected += int(missing.sum())
    customers = customers[~missing]

    customers = customers.drop_duplicates("customer_id", keep="first").copy()

    signup = pd.to_datetime(customers["signup_date"], format="%Y-%m-%d", errors="coerce")
    bad_date = customers["signup_date"].notna() & signup.isna()
    rejected += int(bad_date.sum())
    customers = customers[~bad_date].copy()
    customers["signup_date"] = signup[~bad_date]

    customers["age"] = customers["age"].fillna(round(customers["age"].median()))
    customers["country"] = customers["country"].fillna("unknown")

    low, high = customers["age"].quantile([0.01, 0.99])
    customers["age"] = customers["age"].clip(low, high)
    customers.to_parquet(os.path.join(out_dir, "clean.parquet"), index=False)

    per_customer = (
        transactions.groupby("customer_id")
        .agg(
            orders=("amount", "size"),
            revenue=("amount", "sum"),
            last_order=("order_date", "max"),
        )
        .reset_index()
    )
    result = customers[["customer_id", "country", "channel"]].merge(per_customer, on="customer_id")
    result.to_parquet(os.path.join(out_dir, "customer_revenue.parquet"), index=False)

    print(
        json.dumps(
            {
                "customers_in": rows_in,
                "clean_rows": len(customers),
                "rejected": rejected,
                "result_rows": len(result),
                "revenue": round(float(result["revenue"].sum()), 2),
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
