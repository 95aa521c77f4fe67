//! Generates the benchmark's data: customers (10 columns, some dirty values) and their
//! transactions, as CSV, from a fixed seed so every run makes the same files.
//!
//!     cargo run --release --example generate -- [DIR] [CUSTOMERS] [TRANSACTIONS]
//!
//! Defaults: target/bench-data, 1,000,000 customers, 10,000,000 transactions.
//!
//! Dirty on purpose (roughly): 1% duplicate customers, 2% emails with stray spaces or capitals,
//! 1% invalid emails, 0.5% missing emails, 1% missing countries, 3% missing ages, 0.2% absurd
//! ages (999), 0.5% unparseable signup dates, names and cities with stray whitespace.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const SEED: u64 = 20_261_123;

const FIRST: &[&str] = &[
    "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo", "Ida", "Jonas", "Kira",
    "Leon", "Mia", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Sam", "Tara",
];
const LAST: &[&str] = &[
    "Schmidt", "Martin", "Rossi", "Smith", "Garcia", "Novak", "Jansen", "Dubois", "Silva",
    "Kowalski", "Berg", "Moreau",
];
const COUNTRIES: &[&str] = &["DE", "FR", "IT", "ES", "NL", "PL", "SE", "GB", "US", "AT"];
const CITIES: &[&str] = &[
    "Berlin", "Paris", "Milan", "Madrid", "Utrecht", "Krakow", "Malmo", "Leeds", "Austin", "Graz",
];
const CHANNELS: &[&str] = &["web", "app", "store", "partner"];
const DOMAINS: &[&str] = &[
    "example.com",
    "mail.example.org",
    "example.net",
    "shop.example.de",
];

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .map_or_else(|| PathBuf::from("target/bench-data"), PathBuf::from);
    let customers = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let transactions = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let started = std::time::Instant::now();
    generate(&dir, customers, transactions)?;
    println!(
        "wrote {customers} customers and {transactions} transactions to {} in {:.1}s",
        dir.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes `customers.csv` and `transactions.csv` into `dir`.
pub fn generate(dir: &Path, customers: usize, transactions: usize) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut rng = StdRng::seed_from_u64(SEED);
    let mut out = BufWriter::with_capacity(1 << 20, File::create(dir.join("customers.csv"))?);
    writeln!(
        out,
        "customer_id,first_name,last_name,email,country,city,signup_date,age,channel,income"
    )?;
    for i in 0..customers {
        // About 1% of rows repeat an earlier customer (a second export of the same person).
        let id = if i > 100 && rng.random_bool(0.01) {
            rng.random_range(0..i)
        } else {
            i
        };
        write_customer(&mut out, &mut rng, id)?;
    }
    out.flush()?;

    let mut out = BufWriter::with_capacity(1 << 20, File::create(dir.join("transactions.csv"))?);
    writeln!(out, "transaction_id,customer_id,order_date,quantity,amount")?;
    for t in 0..transactions {
        // Some customers buy far more than others.
        let skew: f64 = rng.random::<f64>().powi(2);
        let customer = (skew * customers as f64) as usize;
        let day = rng.random_range(0..730);
        let (year, month, dom) = date_of(day);
        let quantity = rng.random_range(1..5);
        let cents = rng.random_range(199..25_000) * quantity;
        writeln!(
            out,
            "{t},C{customer:07},{year}-{month:02}-{dom:02},{quantity},{}.{:02}",
            cents / 100,
            cents % 100
        )?;
    }
    out.flush()
}

fn write_customer(out: &mut impl Write, rng: &mut StdRng, id: usize) -> std::io::Result<()> {
    let first = FIRST[id % FIRST.len()];
    let last = LAST[(id / 7) % LAST.len()];
    let domain = DOMAINS[id % DOMAINS.len()];
    let roll: f64 = rng.random();
    let email = if roll < 0.005 {
        String::new()
    } else if roll < 0.015 {
        format!(
            "{}.{}{}@{}",
            first.to_lowercase(),
            last.to_lowercase(),
            id,
            "invalid"
        )
    } else if roll < 0.035 {
        format!("  {}.{}{}@{} ", first, last, id, domain.to_uppercase())
    } else {
        format!(
            "{}.{}{}@{}",
            first.to_lowercase(),
            last.to_lowercase(),
            id,
            domain
        )
    };
    let country = if rng.random_bool(0.01) {
        ""
    } else {
        COUNTRIES[id % COUNTRIES.len()]
    };
    let city = CITIES[(id / 3) % CITIES.len()];
    let city = if rng.random_bool(0.05) {
        format!(" {city} ")
    } else {
        city.to_string()
    };
    let signup = if rng.random_bool(0.005) {
        "unknown".to_string()
    } else {
        let (y, m, d) = date_of(rng.random_range(0..1460));
        format!("{}-{m:02}-{d:02}", y - 2)
    };
    let age = if rng.random_bool(0.03) {
        String::new()
    } else if rng.random_bool(0.002) {
        "999".to_string()
    } else {
        rng.random_range(18..90).to_string()
    };
    let channel = CHANNELS[rng.random_range(0..CHANNELS.len())];
    let income = rng.random_range(15_000..180_000);
    writeln!(
        out,
        "C{id:07},{first},{last},{email},{country},{city},{signup},{age},{channel},{income}"
    )
}

/// A day counted from 2024-01-01 as (year, month, day); months kept at 28 days for simplicity.
fn date_of(day: u32) -> (u32, u32, u32) {
    let year = 2024 + day / 336;
    let rest = day % 336;
    (year, rest / 28 + 1, rest % 28 + 1)
}
