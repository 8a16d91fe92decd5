//! Flows already in the store, read back in time order and prepared again
//! (with today's policy, say) for detection, audits and recommendations,
//! one at a time: a month of flows is never held in memory.

use cordon_store::{FlowQuery, FlowReader};

use crate::{Pipeline, PipelineError};

/// Flows handed on per step while replaying.
const REPLAY_STEP: usize = 4096;

impl Pipeline<'_> {
    /// Run the stored flows matching `query` through the stages to every
    /// sink; `progress` is called with the count so far every few thousand
    /// flows. A store attached to this pipeline is not written: the flows
    /// are already there. Returns how many flows were replayed.
    ///
    /// # Errors
    /// Store errors reading the flows.
    pub fn replay(
        &mut self,
        from: &dyn FlowReader,
        query: &FlowQuery,
        progress: &mut dyn FnMut(u64),
    ) -> Result<u64, PipelineError> {
        let mut pending = Vec::with_capacity(REPLAY_STEP);
        let mut n = 0u64;
        // With a policy, enrichment replaces the stored one (the enricher
        // always sets it); without, the stored one stays.
        from.scan(query, &mut |flow| {
            pending.push(flow);
            n += 1;
            if pending.len() >= REPLAY_STEP {
                self.take(&mut pending);
                self.batch.clear();
                progress(n);
            }
            true
        })?;
        self.take(&mut pending);
        self.batch.clear();
        progress(n);
        Ok(n)
    }
}
