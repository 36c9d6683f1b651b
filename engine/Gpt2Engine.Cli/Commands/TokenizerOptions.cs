using System.CommandLine;
using Gpt2Engine.Checkpoints;
using Gpt2Engine.Tokenization;

namespace Gpt2Engine.Cli.Commands;

/// <summary>What tokenize and detokenize share: the choice of vocabulary and the input files (standard input by default).</summary>
internal sealed class TokenizerOptions
{
    private readonly Option<string?> _vocab = new("--vocab")
    {
        Description = "Folder with encoder.json and vocab.bpe (or vocab.json and merges.txt); default: the built-in GPT-2 vocabulary",
    };
    private readonly Option<string?> _weights = new("--weights")
    {
        Description = "Use the vocabulary stored beside these weights (a size such as 124M, a checkpoint folder or a .safetensors file)",
    };
    private readonly Argument<string[]> _files = new("FILE")
    {
        Description = "Input files; standard input when none is given (or for '-')",
        Arity = ArgumentArity.ZeroOrMore,
    };

    public void AddTo(Command command)
    {
        command.Options.Add(_vocab);
        command.Options.Add(_weights);
        command.Arguments.Add(_files);
    }

    public Gpt2Tokenizer Tokenizer(ParseResult parse)
    {
        string? vocab = parse.GetValue(_vocab), weights = parse.GetValue(_weights);
        if (vocab is not null && weights is not null)
            throw new Gpt2Exception("give --vocab or --weights, not both");
        if (vocab is not null)
            return Gpt2Tokenizer.FromDirectory(vocab);
        if (weights is null)
            return Gpt2Tokenizer.Default;
        string directory = CheckpointLoader.ResolveDirectory(weights);
        var tokenizer = Gpt2Tokenizer.ForWeightsDirectory(directory, out bool builtIn);
        if (builtIn)
            parse.InvocationConfiguration.Error.WriteLine($"gpt2-engine: note: no encoder.json/vocab.bpe in {directory}; using the built-in GPT-2 vocabulary");
        return tokenizer;
    }

    /// <summary>Each input's name and bytes, in order; standard input when no file is given.</summary>
    public IEnumerable<(string Name, byte[] Bytes)> Inputs(ParseResult parse)
    {
        string[] files = parse.GetValue(_files) is { Length: > 0 } given ? given : ["-"];
        foreach (string file in files)
        {
            if (file == "-")
            {
                StandardStreams.EnsureInputReadable();
                using var stdin = Console.OpenStandardInput();
                var bytes = new MemoryStream();
                stdin.CopyTo(bytes);
                yield return ("standard input", bytes.ToArray());
            }
            else if (!File.Exists(file))
                throw new Gpt2Exception($"{file}: {(Directory.Exists(file) ? "is a folder, not a file" : "no such file")}");
            else
                yield return (file, File.ReadAllBytes(file));
        }
    }
}
