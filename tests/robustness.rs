//! Bad input never panics: thousands of corrupted variants of a real
//! compiled livepatch object either convert (and then verify) or are refused
//! with an error, and `check` reports on each of them.

mod common;

use common::*;
use klp_convert::convert;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn corrupted_objects_are_refused_not_panicked_on() {
    let dir = scratch("robustness");
    let obj = dir.join("lp.o");
    compile_x86_64(
        &format!(
            "{HEADER}{LIVEPATCH_MODINFO}
extern char *saved_command_line KLP_RELOC_SYMBOL(vmlinux, vmlinux, saved_command_line);
extern int t KLP_RELOC_SYMBOL_POS(klp_test_target, klp_test_target, t, 2);
int f(void) {{ return saved_command_line[0] + t; }}
void *p = &t;
"
        ),
        &obj,
    );
    let good = std::fs::read(&obj).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut converted, mut refused, mut internal) = (0, 0, 0);
    for round in 0..20000 {
        let mut bad = good.clone();
        match round % 4 {
            // A few random bytes anywhere.
            0 | 1 => {
                for _ in 0..1 + rng.next() % 4 {
                    let at = (rng.next() % bad.len() as u64) as usize;
                    bad[at] = rng.next() as u8;
                }
            }
            // Truncation.
            2 => bad.truncate((rng.next() % bad.len() as u64) as usize),
            // A byte of the headers (ELF header or section headers).
            _ => {
                let shoff = u64::from_le_bytes(good[0x28..0x30].try_into().unwrap()) as usize;
                let at = if rng.next() % 2 == 0 {
                    (rng.next() % 64) as usize
                } else {
                    shoff + (rng.next() % (good.len() - shoff) as u64) as usize
                };
                bad[at] = rng.next() as u8;
            }
        }
        let checked =
            std::panic::catch_unwind(|| klp_convert::check::check_bytes("bad", &bad, None, None));
        assert!(checked.is_ok(), "check panicked on variant {round}");
        let result = std::panic::catch_unwind(|| convert::convert_bytes(&bad));
        match result {
            Ok(Ok(_)) => converted += 1,
            Ok(Err(convert::Error::Internal(p))) => {
                internal += 1;
                eprintln!(
                    "variant {round}: output failed verification: {:?}",
                    p.first()
                );
            }
            Ok(Err(_)) => refused += 1,
            Err(_) => panic!("panic on variant {round}"),
        }
    }
    eprintln!("corrupted variants: {converted} converted, {refused} refused, {internal} failed verification");
    assert!(refused > 1000, "the corruptions should mostly be caught");
    assert_eq!(
        internal, 0,
        "corrupt input must be refused by the planner, not by verification"
    );
}
