//! The labelled corpus: planted secrets per rule and look-alikes that must stay. Prints precision and
//! recall per rule (each rule alone) and for the whole detector (is every planted secret masked?).

use custos_mask::{mask_text, Detector, Rule};

use crate::gen::{lookalike, secret, Rng};

const PER_RULE: usize = 200;
const LOOKALIKES: usize = 4000;
const MIN_RECALL: f64 = 0.99;
const MIN_PRECISION: f64 = 0.98;

#[test]
fn corpus_precision_and_recall() {
    let rules = Rule::builtin().expect("rules");
    let mut rng = Rng::new(0x00C0_FFEE);
    // (line, label rule id, planted secret)
    let mut corpus: Vec<(String, Option<String>, String)> = Vec::new();
    for rule in &rules {
        for _ in 0..PER_RULE {
            let (s, line) = secret(&rule.id, &mut rng);
            corpus.push((line, Some(rule.id.clone()), s));
        }
    }
    for _ in 0..LOOKALIKES {
        corpus.push((lookalike(&mut rng), None, String::new()));
    }

    println!(
        "{:<28} {:>5} {:>4} {:>4} {:>9} {:>7}",
        "rule", "tp", "fp", "fn", "precision", "recall"
    );
    let mut failures = Vec::new();
    for rule in &rules {
        let det = Detector::new(vec![rule.clone()]).expect("compile");
        let (mut tp, mut fp, mut fneg) = (0u32, 0u32, 0u32);
        for (line, label, _) in &corpus {
            let found = !det.scan(line.as_bytes()).is_empty();
            let mine = label.as_deref() == Some(rule.id.as_str());
            match (found, mine) {
                (true, true) => tp += 1,
                (true, false) => {
                    fp += 1;
                    println!("  fp {}: {line:?}", rule.id);
                }
                (false, true) => {
                    fneg += 1;
                    println!("  fn {}: {line:?}", rule.id);
                }
                (false, false) => {}
            }
        }
        let precision = f64::from(tp) / f64::from((tp + fp).max(1));
        let recall = f64::from(tp) / f64::from((tp + fneg).max(1));
        println!(
            "{:<28} {tp:>5} {fp:>4} {fneg:>4} {precision:>9.4} {recall:>7.4}",
            rule.id
        );
        if precision < MIN_PRECISION || recall < MIN_RECALL {
            failures.push(rule.id.clone());
        }
    }

    // The whole detector: no planted secret survives, no look-alike line is touched.
    let det = Detector::builtin().expect("detector");
    let (mut leaked, mut touched) = (0, 0);
    for (line, label, s) in &corpus {
        let mut buf = line.clone().into_bytes();
        mask_text(&det, &mut buf);
        let out = String::from_utf8_lossy(&buf);
        if label.is_some() && out.contains(s.as_str()) {
            leaked += 1;
        }
        if label.is_none() && buf != line.as_bytes() {
            touched += 1;
            println!("look-alike masked: {line:?}");
        }
    }
    println!(
        "all rules: {leaked} planted secrets leaked, {touched}/{LOOKALIKES} look-alikes masked"
    );
    assert_eq!(leaked, 0);
    assert!(f64::from(touched) <= LOOKALIKES as f64 * (1.0 - MIN_PRECISION));
    assert!(failures.is_empty(), "below target: {failures:?}");
}
