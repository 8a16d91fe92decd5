//! "Did you mean" suggestions.

/// The candidate closest to `word` by edit distance, if it is close enough
/// to be a plausible typo (at most a third of the word's length, at least 1);
/// failing that, a candidate that starts the word or that the word starts.
pub fn closest<'a, I>(word: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (word.chars().count() / 3).max(1);
    let lower = word.to_lowercase();
    let candidates: Vec<&'a str> = candidates.into_iter().collect();
    let by_distance = candidates
        .iter()
        .map(|c| (edit_distance(&lower, &c.to_lowercase()), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, c.len()))
        .map(|(_, c)| c);
    // `web-tier` for `web`: a name that is the start of the word, or the
    // word the start of the name, is likely what was meant.
    by_distance.or_else(|| {
        candidates
            .iter()
            .filter(|c| c.len() >= 3 && lower.len() >= 3)
            .filter(|c| {
                let c = c.to_lowercase();
                lower.starts_with(&c) || c.starts_with(&lower)
            })
            .max_by_key(|c| c.len())
            .copied()
    })
}

/// Levenshtein distance over characters, with two rows of memory.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = substitute.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}
