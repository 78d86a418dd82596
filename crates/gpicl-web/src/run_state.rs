//! The states the page's run can be in, and every transition between them in one place
//! ([`RunState::on`]). The page keeps no flags beside it: what the toolbar shows, whether ▶
//! trains and whether the worker's messages still matter follow from the state.

/// Where the page's run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// The worker is starting its device and loading the data.
    Loading,
    /// This tab's saved run was found: nothing trains until the user resumes or discards it.
    Offered,
    /// A new run, or a run being replaced, is on its way (the worker has not confirmed it).
    Starting,
    /// A run at step 0 that has not trained.
    NotStarted,
    /// Training.
    Training,
    /// Pause (or one step) was asked: the steps in flight finish first.
    Stopping,
    /// A run that trained and stopped.
    Paused,
    /// The run diverged: it is going back to its last saved state.
    Diverged,
    /// The worker's GPU device was lost: a fresh worker starts and the autosave comes back.
    DeviceLost,
    /// The worker cannot train (the page says why).
    Failed,
}

/// What happens to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happening {
    /// A saved run waits for the user's answer.
    Offer,
    /// A new run or checkpoint was sent to the worker.
    Replace,
    /// The worker confirmed the run at `step`; `train`: it trains at once.
    Began {
        /// The run's step.
        step: usize,
        /// Training starts at once.
        train: bool,
    },
    /// The worker refused a run: the state `before` the request comes back (if it had a
    /// run; else nothing can train).
    Refused {
        /// The state when the run was requested.
        before: RunState,
    },
    /// ▶ Train.
    Train,
    /// ⏸ Pause or Step.
    Stop,
    /// The worker has nothing left to do, at `step`.
    Idle {
        /// The run's step.
        step: usize,
    },
    /// The run diverged.
    Diverged,
    /// The run failed (the worker stopped training it).
    Error,
    /// The worker's device was lost.
    DeviceLost,
    /// The worker cannot train.
    Failed,
}

impl RunState {
    /// The state after `what`; what is not a transition of this state leaves it unchanged.
    pub fn on(self, what: Happening) -> RunState {
        use Happening as H;
        use RunState as S;
        let resting = |step: usize| if step == 0 { S::NotStarted } else { S::Paused };
        match (self, what) {
            (S::Failed, _) => S::Failed,
            (_, H::Failed) => S::Failed,
            // Before any run, nothing is lost: the fresh worker starts as the first did.
            (S::Loading | S::Offered, H::DeviceLost) => self,
            (_, H::DeviceLost) => S::DeviceLost,
            (S::Loading, H::Offer) => S::Offered,
            (_, H::Replace) => S::Starting,
            (_, H::Began { train: true, .. }) => S::Training,
            (_, H::Began { step, train: false }) => resting(step),
            (S::Starting, H::Refused { before }) if before.has_run() => before,
            (S::Starting, H::Refused { .. }) => S::Failed,
            (S::NotStarted | S::Paused, H::Train) => S::Training,
            (S::NotStarted | S::Paused | S::Training, H::Stop) => S::Stopping,
            (S::Training | S::Stopping, H::Idle { step }) => resting(step),
            (S::Training | S::Stopping, H::Diverged) => S::Diverged,
            (S::Training | S::Stopping, H::Error) => S::Paused,
            (state, _) => state,
        }
    }

    /// Whether a run exists that the worker is not replacing (so its events are drawn and
    /// the run's buttons work).
    pub fn has_run(self) -> bool {
        matches!(
            self,
            RunState::NotStarted | RunState::Training | RunState::Stopping | RunState::Paused
        )
    }

    /// The tab's title: once the run has steps, its step and state before `base` (the page's
    /// own title), so a visitor on another tab sees it train; else `base`. The page benchmark
    /// reads it too, without attaching DevTools to the page.
    pub fn tab_title(self, step: usize, base: &str) -> String {
        match self {
            RunState::Training | RunState::Stopping | RunState::Paused if step > 0 => {
                format!("step {step} · {} — {base}", self.label())
            }
            _ => base.to_string(),
        }
    }

    /// What the page's state line says.
    pub fn label(self) -> &'static str {
        match self {
            RunState::Loading => "loading",
            RunState::Offered => "waiting for your answer",
            RunState::Starting => "starting a run…",
            RunState::NotStarted => "not started",
            RunState::Training => "training",
            RunState::Stopping => "finishing the steps in flight…",
            RunState::Paused => "paused",
            RunState::Diverged => "diverged: going back…",
            RunState::DeviceLost => "restarting the device…",
            RunState::Failed => "stopped",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Happening as H;
    use super::RunState as S;

    #[test]
    fn the_tab_title_shows_the_step_of_a_run_that_has_steps() {
        assert_eq!(
            S::Training.tab_title(12, "gpicl"),
            "step 12 · training — gpicl"
        );
        assert_eq!(S::Paused.tab_title(3, "gpicl"), "step 3 · paused — gpicl");
        assert_eq!(S::Training.tab_title(0, "gpicl"), "gpicl");
        assert_eq!(S::Loading.tab_title(7, "gpicl"), "gpicl");
        assert_eq!(S::Failed.tab_title(7, "gpicl"), "gpicl");
    }

    #[test]
    fn a_run_goes_from_loading_through_training_to_paused() {
        let s = S::Loading.on(H::Replace);
        assert_eq!(s, S::Starting);
        let s = s.on(H::Began {
            step: 0,
            train: true,
        });
        assert_eq!(s, S::Training);
        // An idle worker before ▶ took effect is no pause; after Stop it is.
        let s = s.on(H::Stop);
        assert_eq!(s, S::Stopping);
        assert_eq!(s.on(H::Idle { step: 7 }), S::Paused);
        assert_eq!(S::Stopping.on(H::Idle { step: 0 }), S::NotStarted);
        assert_eq!(S::Paused.on(H::Train), S::Training);
    }

    #[test]
    fn offers_refusals_divergence_and_device_loss() {
        assert_eq!(S::Loading.on(H::Offer), S::Offered);
        assert_eq!(
            S::Offered.on(H::Train),
            S::Offered,
            "nothing trains before the answer"
        );
        assert_eq!(S::Offered.on(H::Replace), S::Starting);
        assert_eq!(
            S::Starting.on(H::Began {
                step: 40,
                train: false
            }),
            S::Paused
        );
        let before = S::Training;
        assert_eq!(
            S::Starting.on(H::Refused { before }),
            S::Training,
            "the run goes on"
        );
        let before = S::Loading;
        assert_eq!(S::Starting.on(H::Refused { before }), S::Failed);
        assert_eq!(S::Training.on(H::Diverged), S::Diverged);
        assert_eq!(S::Diverged.on(H::Replace), S::Starting);
        assert_eq!(S::Training.on(H::Error), S::Paused);
        assert_eq!(S::Training.on(H::DeviceLost), S::DeviceLost);
        assert_eq!(S::Offered.on(H::DeviceLost), S::Offered, "the offer stays");
        assert_eq!(S::Loading.on(H::DeviceLost), S::Loading);
        assert_eq!(S::DeviceLost.on(H::Replace), S::Starting);
        assert_eq!(
            S::Failed.on(H::Replace),
            S::Failed,
            "a failed worker stays failed"
        );
        assert!(!S::Starting.has_run() && S::Paused.has_run());
    }
}
