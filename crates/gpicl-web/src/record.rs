//! The page's record of the current run is a [`Results`] (what `results.json` holds): the
//! worker's events add to it here, and the downloads, the autosave and the charts read it.

use gpicl_core::{Curve, EvalPoint, Results};

/// Adds a chunk's `losses` (the run is at `step` after them) and its training time.
pub fn add_losses(r: &mut Results, step: usize, losses: &[f32], ms: f64) {
    let first = step + 1 - losses.len().min(step + 1);
    r.loss_log
        .extend(losses.iter().enumerate().map(|(i, &l)| (first + i, l)));
    r.steps = step;
    r.train_time_s += ms / 1000.0;
}

/// Adds (or replaces) the evaluation at `step`, with the mean loss since the one before.
pub fn add_eval(r: &mut Results, step: usize, curves: Vec<Curve>) {
    r.history.retain(|e| e.step != step);
    let previous = r
        .history
        .iter()
        .map(|e| e.step)
        .filter(|&s| s < step)
        .max()
        .unwrap_or(0);
    let window: Vec<f32> = r
        .loss_log
        .iter()
        .filter(|(s, _)| *s > previous && *s <= step)
        .map(|p| p.1)
        .collect();
    r.history.push(EvalPoint {
        step,
        time_s: r.train_time_s,
        train_loss: window.iter().sum::<f32>() / window.len().max(1) as f32,
        curves,
    });
    r.history.sort_by_key(|e| e.step);
}

/// The losses alone, in step order (the loss chart's data).
pub fn losses(r: &Results) -> Vec<f32> {
    r.loss_log.iter().map(|&(_, l)| l).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpicl_core::RunConfig;

    #[test]
    fn losses_and_evaluations_land_at_their_steps() {
        let mut r = Results::new(&RunConfig::preset("tiny").unwrap(), "flex");
        add_eval(&mut r, 0, vec![]);
        add_losses(&mut r, 2, &[2.0, 1.0], 500.0);
        add_losses(&mut r, 3, &[3.0], 500.0);
        add_eval(&mut r, 3, vec![]);
        add_eval(&mut r, 3, vec![]);
        assert_eq!(r.loss_log, vec![(1, 2.0), (2, 1.0), (3, 3.0)]);
        assert_eq!(r.steps, 3);
        assert_eq!(r.train_time_s, 1.0);
        assert_eq!(
            r.history.len(),
            2,
            "an evaluation at the same step replaces the earlier"
        );
        assert_eq!((r.history[1].step, r.history[1].train_loss), (3, 2.0));
        assert_eq!(losses(&r), vec![2.0, 1.0, 3.0]);
    }
}
