//! A spinner while a large component compiles, on a terminal only.

use airlock::CompileEvent;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

/// Components at least this large show progress: smaller ones compile in
/// well under a second.
const LARGE_COMPONENT: usize = 1 << 20;

/// A callback for [`airlock::HostBuilder::on_compile`].
pub fn compile_spinner() -> impl Fn(&CompileEvent) + Send + Sync + 'static {
    let spinner: Mutex<Option<ProgressBar>> = Mutex::new(None);
    let on_terminal = std::io::stderr().is_terminal();
    move |event| {
        let mut slot = spinner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match event {
            CompileEvent::Compiling { bytes, .. } if on_terminal && *bytes >= LARGE_COMPONENT => {
                let bar = ProgressBar::new_spinner().with_message(format!(
                    "compiling component ({})",
                    bytesize::ByteSize::b(*bytes as u64)
                ));
                bar.set_style(
                    ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.enable_steady_tick(Duration::from_millis(100));
                *slot = Some(bar);
            }
            CompileEvent::Compiled { .. } => {
                if let Some(bar) = slot.take() {
                    bar.finish_and_clear();
                }
            }
            _ => {}
        }
    }
}
