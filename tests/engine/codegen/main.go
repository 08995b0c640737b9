// pulumi-codegen LANG SCHEMA OUT: write the LANG (nodejs or go) SDK of the package SCHEMA into OUT with
// Pulumi's codegen, as `pulumi package gen-sdk` does through that language's host.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	gogen "github.com/pulumi/pulumi/pkg/v3/codegen/go"
	nodejsgen "github.com/pulumi/pulumi/pkg/v3/codegen/nodejs"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: pulumi-codegen nodejs|go SCHEMA OUT")
		os.Exit(2)
	}
	lang, schemaPath, out := os.Args[1], os.Args[2], os.Args[3]
	data, err := os.ReadFile(schemaPath)
	check(err)
	var spec schema.PackageSpec
	check(json.Unmarshal(data, &spec))
	// The package refers to no other package, so the loader is never asked for one.
	pkg, diags, err := schema.BindSpec(spec, schema.NewCachedLoader(nil), schema.ValidationOptions{})
	check(err)
	if diags.HasErrors() {
		check(diags)
	}
	var files map[string][]byte
	switch lang {
	case "nodejs":
		files, err = nodejsgen.GeneratePackage("pulumi-codegen", pkg, nil, nil, false, nil)
	case "go":
		files, err = gogen.GeneratePackage("pulumi-codegen", pkg, nil)
	default:
		err = fmt.Errorf("unknown language %q (nodejs or go)", lang)
	}
	check(err)
	for name, body := range files {
		path := filepath.Join(out, name)
		check(os.MkdirAll(filepath.Dir(path), 0o755))
		check(os.WriteFile(path, body, 0o644))
	}
	fmt.Printf("wrote %d files to %s\n", len(files), out)
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
