//! Makes `data/cdnow_outcomes.csv`, the outcomes `pipelines/cdnow-evaluate.yaml` measures: what
//! every CDNOW customer bought from 1998-01-01 to 1998-03-31, after a (simulated) win-back
//! email campaign sent on 1998-01-01 to the treatment group of `pipelines/cdnow-holdout.yaml`.
//!
//! The baseline is real: each customer's actual CDNOW purchases in that quarter. The campaign
//! effect is simulated, deterministically: a treatment customer who bought nothing that quarter
//! makes one extra purchase with probability 5% if they bought only once in 1997, 2.5% if more
//! often (win-back emails work best on lapsed one-time buyers), for the average amount of their
//! 1997 orders. That lifts conversion from 16.2% to about 19.6%: with a 10% holdout of 23,570
//! customers the experiment has 99% power at alpha = 0.05 (3% and 1.5% gave only 72%, too
//! little for an example that must show the lift). The draw is SHA-256 based (no random seed), so the file is the same on every
//! machine. Control customers keep exactly their real purchases.
//!
//!     cargo run --example cdnow_outcomes > data/cdnow_outcomes.csv

use std::collections::BTreeMap;
use std::error::Error;

use segflow::steps::validate::bucket::{Arms, bucket};

/// Must match `pipelines/cdnow-holdout.yaml`.
const SALT: &str = "cdnow-winback-1998";
const HOLDOUT: f64 = 0.1;
/// Independent of the assignment: a different salt.
const DRAW_SALT: &str = "cdnow-outcomes-simulation";
const WINDOW_START: &str = "1998-01-01";
const WINDOW_END: &str = "1998-03-31";

#[derive(Default)]
struct Customer {
    orders_before: u32,
    spent_before: f64,
    orders_in_window: u32,
    spent_in_window: f64,
}

fn main() -> Result<(), Box<dyn Error>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/data/cdnow_transactions.csv");
    let text = std::fs::read_to_string(path)?;
    let mut customers: BTreeMap<String, Customer> = BTreeMap::new();
    for (line_number, line) in text.lines().enumerate().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let [id, date, _quantity, amount] = fields[..] else {
            return Err(format!(
                "line {} has {} fields, not 4",
                line_number + 1,
                fields.len()
            )
            .into());
        };
        let amount: f64 = amount.parse()?;
        let customer = customers.entry(id.to_string()).or_default();
        if date < WINDOW_START {
            customer.orders_before += 1;
            customer.spent_before += amount;
        } else if date <= WINDOW_END {
            customer.orders_in_window += 1;
            customer.spent_in_window += amount;
        }
    }

    let arms = Arms::holdout(HOLDOUT);
    println!("customer_id,converted,orders,revenue");
    for (id, customer) in &customers {
        // segflow keeps the zero-padded ids as text ("00001"), and hashes them as such.
        let hashed_id = id.as_str();
        let treatment = arms.names()[arms.assign(SALT, hashed_id)] == "treatment";
        let (mut orders, mut revenue) = (customer.orders_in_window, customer.spent_in_window);
        if treatment && orders == 0 && customer.orders_before > 0 {
            let chance = if customer.orders_before == 1 {
                0.05
            } else {
                0.025
            };
            if bucket(DRAW_SALT, hashed_id) < chance {
                orders = 1;
                revenue = customer.spent_before / customer.orders_before as f64;
            }
        }
        println!("{id},{},{orders},{:.2}", u8::from(orders > 0), revenue);
    }
    Ok(())
}
