using System.CommandLine;
using Gpt2Engine.Checkpoints;

namespace Gpt2Engine.Cli.Commands;

internal static class ConvertCommand
{
    public static Command Create()
    {
        var weights = new Option<string>("--weights") { Description = "Weights to convert: a size name (124M...), a checkpoint directory or a .safetensors file", Required = true };
        var dtype = new Option<string>("--dtype") { Description = "Dtype of the matmul matrices (each layer's four weights and wte): bf16 or f32", DefaultValueFactory = _ => "bf16" };
        var output = new Option<string>("--out") { Description = "The .safetensors file to write (atomically)", Required = true };
        var command = new Command("convert", "Convert weights to a memory-mappable safetensors file, matmul matrices in bf16 (or f32).");
        foreach (var option in (Option[])[weights, dtype, output]) command.Options.Add(option);
        command.SetAction(new Func<ParseResult, int>(parse =>
        {
            string dtypeName = parse.GetValue(dtype)!;
            var target = dtypeName.ToLowerInvariant() switch
            {
                "bf16" => TensorDType.BF16,
                "f32" or "fp32" => TensorDType.F32,
                _ => throw new Gpt2Exception($"--dtype {dtypeName}: expected bf16 or f32"),
            };
            string outPath = parse.GetValue(output)!;
            using var loaded = CheckpointLoader.Load(parse.GetValue(weights)!, parse.InvocationConfiguration.Error);
            WeightConversion.WriteSafetensors(loaded, target, outPath);
            parse.InvocationConfiguration.Output.WriteLine($"wrote {outPath}: {loaded.Config}, matmul matrices in {dtypeName.ToLowerInvariant()}, {new FileInfo(outPath).Length / 1e6:F1} MB");
            return 0;
        }));
        return command;
    }
}
