namespace Gpt2Engine.Evaluation;

/// <summary>
/// English function words for the stop-word-filtered LAMBADA variant: articles, pronouns, prepositions,
/// conjunctions, auxiliary and modal verbs, and common adverbs and contractions. Our own list, lower case.
/// </summary>
public static class StopWords
{
    private static readonly HashSet<string> Words = new(StringComparer.Ordinal)
    {
        // articles, determiners, quantifiers
        "a", "an", "the", "this", "that", "these", "those", "some", "any", "no", "each", "every", "all", "both",
        "either", "neither", "few", "more", "most", "much", "many", "other", "such", "own", "same", "several",
        // pronouns
        "i", "me", "my", "mine", "myself", "you", "your", "yours", "yourself", "yourselves", "he", "him", "his",
        "himself", "she", "her", "hers", "herself", "it", "its", "itself", "we", "us", "our", "ours", "ourselves",
        "they", "them", "their", "theirs", "themselves", "who", "whom", "whose", "which", "what", "one",
        // prepositions
        "about", "above", "across", "after", "against", "along", "among", "around", "at", "before", "behind",
        "below", "beneath", "beside", "between", "beyond", "by", "down", "during", "for", "from", "in", "inside",
        "into", "near", "of", "off", "on", "onto", "out", "outside", "over", "past", "since", "through",
        "throughout", "to", "toward", "towards", "under", "until", "up", "upon", "with", "within", "without",
        // conjunctions
        "and", "but", "or", "nor", "so", "yet", "if", "than", "because", "while", "although", "though", "unless",
        "whether", "as", "when", "where", "why", "how", "then", "once",
        // auxiliary and modal verbs
        "am", "is", "are", "was", "were", "be", "been", "being", "have", "has", "had", "having", "do", "does",
        "did", "doing", "will", "would", "shall", "should", "can", "could", "may", "might", "must", "ought",
        // adverbs and particles
        "not", "now", "here", "there", "again", "also", "just", "only", "very", "too", "even", "still", "ever",
        "never", "always", "already", "yes", "oh",
        // contractions and their pieces as GPT-2 splits them
        "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "don't", "didn't", "doesn't", "isn't", "wasn't", "aren't",
        "weren't", "won't", "can't", "couldn't", "wouldn't", "shouldn't", "i'm", "it's", "that's",
    };

    public static int Count => Words.Count;

    /// <summary>Whether <paramref name="word"/> (already lower case, no surrounding space) is a stop word.</summary>
    public static bool Contains(string word) => Words.Contains(word);
}
