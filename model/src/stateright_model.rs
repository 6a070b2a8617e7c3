//! The checked system as stateright sees it: `impl Model for BullySystem`, so that stateright's
//! checkers and its web Explorer run it. The system's semantics ([`crate::system`]) and the
//! properties ([`crate::properties`]) are defined apart; this joins them: the initial states,
//! the enabled actions, the next state, the property table, and what the Explorer shows of a
//! step.

use crate::properties;
use crate::system::{Action, BullySystem, NetOps, StartMode, SysState};
use stateright::{Model, Path, Property};

impl Model for BullySystem {
    type State = SysState;
    type Action = Action;

    fn init_states(&self) -> Vec<SysState> {
        vec![self.initial_state()]
    }

    fn actions(&self, s: &SysState, actions: &mut Vec<Action>) {
        if self.halted() {
            return;
        }
        self.message_actions(s, &s.network, actions);
        self.local_actions(s, |a, quiet| {
            if quiet.holds(&s.network) {
                actions.push(a);
            }
        });
    }

    fn next_state(&self, last: &SysState, action: Action) -> Option<SysState> {
        let mut ops = NetOps::new();
        let mut next = self.step(last, action, &mut ops)?;
        for op in &ops {
            self.apply_op(&mut next.network, op, &next.procs);
        }
        Some(next)
    }

    fn properties(&self) -> Vec<Property<Self>> {
        let mut p: Vec<Property<Self>> = properties::ALWAYS
            .iter()
            .map(|&(name, check)| Property::always(name, check))
            .collect();
        p.push(Property::sometimes(
            "liveness goal reached",
            properties::settled,
        ));
        // Each `sometimes` is registered only where the configuration allows what it looks
        // for; a registered one that is never reached fails the check.
        if self.cfg.crashes > 0 && self.cfg.processes > 1 {
            p.push(Property::sometimes(
                "coordinator crashes and a new one is elected",
                properties::failover_happens,
            ));
            p.push(Property::sometimes(
                "lowest process starts an election a higher one finishes",
                properties::lowest_election_finished,
            ));
        }
        if self.cfg.crashes > 0 && self.cfg.recoveries > 0 && self.cfg.processes > 1 {
            p.push(Property::sometimes(
                "recovered higher process takes over",
                properties::recovered_takeover,
            ));
        }
        // A broadcast reaches two receivers only with three processes or more.
        if self.cfg.cuts_sends_short() && self.cfg.crashes > 0 && self.cfg.processes > 2 {
            p.push(Property::sometimes(
                properties::BROADCAST_CUT,
                properties::broadcast_cut,
            ));
        }
        if self.cfg.start == StartMode::Join && self.cfg.processes > 1 {
            p.push(Property::sometimes(
                "joiner learns every member",
                properties::joiner_learns_all,
            ));
        }
        p
    }

    fn within_boundary(&self, s: &SysState) -> bool {
        if !self.cfg.is_bounded() {
            return true;
        }
        s.network.len() <= self.cfg.max_in_flight
            && s.procs
                .iter()
                .all(|p| p.promised.round() <= self.cfg.max_round)
    }

    fn format_action(&self, action: &Action) -> String {
        properties::describe_action(action)
    }

    fn format_step(&self, last: &SysState, action: Action) -> Option<String> {
        crate::explorer::describe_step(self, last, action)
    }

    fn as_svg(&self, path: Path<SysState, Action>) -> Option<String> {
        Some(crate::system::svg::sequence_diagram(self, path))
    }
}
